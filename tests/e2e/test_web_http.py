"""The web client's files through the gateway: each with its content type and headers."""

from __future__ import annotations

import pytest

from services.mesh.envoy_config import WEB_CONTENT_TYPES, web_files


@pytest.mark.parametrize("path", ["/", *(f"/{f.as_posix()}" for f in web_files())])
def test_every_web_file_is_served_with_its_content_type(gateway, path):
    r = gateway.get(path)
    assert r.status == 200
    suffix = ".html" if path == "/" else path[path.rindex("."):]
    assert r.headers["content-type"] == WEB_CONTENT_TYPES[suffix]


def test_the_page_may_load_nothing_from_elsewhere(gateway):
    r = gateway.get("/")
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert b'<script type="module" src="/js/app.js">' in r.body


def test_a_file_that_is_not_there_is_a_json_404(gateway):
    r = gateway.get("/js/missing.js")
    assert r.status == 404
    assert r.json["code"] == 5


def test_the_page_preloads_every_module_it_imports(gateway):
    page = gateway.get("/").body.decode()
    for f in web_files():
        if f.suffix == ".js" and f.name != "app.js":
            assert f'<link rel="modulepreload" href="/{f.as_posix()}">' in page
