"""The checks every service runs on a request before its handler: decodable text, ids."""

from __future__ import annotations

import pytest
from pictor.engagement.v1 import engagement_service_pb2 as engagement
from pictor.posts.v1 import posts_service_pb2 as posts

from services.common.errors import InvalidArgument
from services.common.request_checks import check_request_ids

GET_POST = "/pictor.posts.v1.PostsService/GetPost"
CREATE_POST = "/pictor.posts.v1.PostsService/CreatePost"
CREATE_COMMENT = "/pictor.engagement.v1.EngagementService/CreateComment"


def refused(method: str, request) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as error:
        check_request_ids(method, request)
    return error.value


@pytest.mark.parametrize("bad", [0, -1, -(2**63)])
def test_an_id_in_the_path_must_be_positive(bad):
    error = refused(GET_POST, posts.GetPostRequest(post_id=bad))
    assert error.field == "post_id" and error.reason == "INVALID_ID"


def test_a_positive_id_passes():
    check_request_ids(GET_POST, posts.GetPostRequest(post_id=2**63 - 1))


def test_an_optional_id_in_a_body_may_be_zero_but_not_negative():
    check_request_ids(CREATE_COMMENT, engagement.CreateCommentRequest(post_id=1, parent_comment_id=0))
    assert refused(CREATE_COMMENT, engagement.CreateCommentRequest(post_id=1, parent_comment_id=-5)).field == \
        "parent_comment_id"


@pytest.mark.parametrize("ids", [[0], [5, -1]])
def test_each_id_of_a_list_must_be_positive(ids):
    assert refused(CREATE_POST, posts.CreatePostRequest(media_ids=ids)).field == "media_ids"


def test_the_mesh_only_methods_are_left_to_their_handlers():
    check_request_ids("/pictor.posts.v1.PostsService/BatchGetPosts", posts.BatchGetPostsRequest(post_ids=[-1]))


def test_the_field_holding_bad_utf8_is_found_in_nested_messages():
    from pictor.accounts.v1 import accounts_pb2
    from pictor.accounts.v1 import accounts_service_pb2 as accounts

    from services.common.request_checks import bad_utf8_field

    good = accounts.UpdateMeRequest(user=accounts_pb2.User(bio="PLACEHOLDER"))
    data = good.SerializeToString().replace(b"PLACEHOLDER", b"bad\xffbytes")
    assert bad_utf8_field(accounts.UpdateMeRequest.DESCRIPTOR, data) == "user.bio"
    assert bad_utf8_field(accounts.UpdateMeRequest.DESCRIPTOR, good.SerializeToString()) == ""
