"""When a cached post shape may be served (its media URLs have URL_LIFE_S left), re-signing one, and what lists leave out."""

from __future__ import annotations

from pictor.accounts.v1 import accounts_pb2
from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.posts.cache import URL_LIFE_S, compact, is_fresh, resigned, url_expiry

NOW = 1_800_000_000
SIG = "A" * 22


def signed(media_id: int, file: str, exp: int, sig: str = SIG) -> str:
    return f"https://x/v1/media/{media_id}/{file}?exp={exp}&sig={sig}"


def media(media_id: int, exp: int, video: bool = False) -> media_pb2.Media:
    item = media_pb2.Media(id=media_id, url_template=signed(media_id, "{variant}", exp),
                           variants=[media_pb2.Variant(size=s, url=signed(media_id, f"{s}.webp", exp)) for s in (150, 1080)],
                           full_screen=[media_pb2.Variant(size=1920, url=signed(media_id, "fs.webp", exp))])
    if video:
        item.video.hls_url = signed(media_id, "master.m3u8", exp)
        item.video.renditions.add(label=720, url=signed(media_id, "720.mp4", exp))
    return item


def post_with_urls_expiring_at(*expiries: int) -> posts_pb2.Post:
    return posts_pb2.Post(id=1, media=[media(i + 1, e) for i, e in enumerate(expiries)])


def test_the_earliest_url_decides_when_a_shape_goes_stale():
    post = post_with_urls_expiring_at(NOW + 3600, NOW + 300)
    assert url_expiry(post) == NOW + 300
    assert is_fresh(post, NOW + 300 - URL_LIFE_S)
    assert not is_fresh(post, NOW + 301 - URL_LIFE_S)


def test_a_shape_without_media_urls_never_goes_stale():
    assert url_expiry(posts_pb2.Post(id=1)) is None
    assert is_fresh(posts_pb2.Post(id=1), NOW + 10**9)


def test_re_signing_replaces_every_url_of_every_item_and_nothing_else():
    post = posts_pb2.Post(id=1, caption="exp=1&sig=caption stays", media=[media(7, NOW), media(8, NOW, video=True)])
    fresh = resigned(post, {7: (NOW + 300, "B" * 22), 8: (NOW + 360, "C" * 22)})
    raw = fresh.SerializeToString()
    assert SIG.encode() not in raw and f"exp={NOW}&".encode() not in raw
    assert fresh.caption == post.caption
    assert fresh.media[0].url_template == signed(7, "{variant}", NOW + 300, "B" * 22)
    assert [v.url for v in fresh.media[1].variants] == [signed(8, f"{s}.webp", NOW + 360, "C" * 22) for s in (150, 1080)]
    assert fresh.media[1].video.renditions[0].url == signed(8, "720.mp4", NOW + 360, "C" * 22)
    assert fresh.media[1].video.hls_url == signed(8, "master.m3u8", NOW + 360, "C" * 22)
    assert url_expiry(fresh) == NOW + 300 and url_expiry(post) == NOW  # a copy: the stale one is left as it was


def test_an_item_media_did_not_sign_leaves_the_post_to_be_shaped_again():
    assert resigned(post_with_urls_expiring_at(NOW, NOW), {1: (NOW + 300, SIG)}) is None


def test_compact_leaves_out_an_empty_alt_text_and_avatar_and_keeps_given_ones():
    post = posts_pb2.Post(id=1, author=accounts_pb2.UserSummary(id=2, avatar_url=""),
                          media=[media_pb2.Media(id=3, alt_text=""), media_pb2.Media(id=4, alt_text="a kite")])
    compact(post)
    assert not post.author.HasField("avatar_url") and post.author.id == 2
    assert [m.HasField("alt_text") for m in post.media] == [False, True] and post.media[1].alt_text == "a kite"
    given = posts_pb2.Post(id=1, author=accounts_pb2.UserSummary(id=2, avatar_url="/v1/avatars/5/150.webp"))
    assert compact(given).author.avatar_url == "/v1/avatars/5/150.webp"
    authorless = compact(posts_pb2.Post(id=1))
    assert not authorless.HasField("author")  # clearing a field of an absent author would have made one
