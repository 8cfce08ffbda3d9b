"""SearchService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from pictor.accounts.v1 import accounts_pb2
from pictor.search.v1 import search_pb2, search_service_pb2_grpc
from pictor.search.v1 import search_service_pb2 as pb

from services.common.auth import TokenVerifier
from services.posts.cache import compact
from services.search.adapters import PostPages
from services.search.service import Hashtag, Place, SearchService, UserDoc

Context = grpc.aio.ServicerContext


def user_proto(user: UserDoc) -> accounts_pb2.UserSummary:
    return accounts_pb2.UserSummary(id=user.user_id, username=user.username, display_name=user.display_name)


def hashtag_proto(tag: Hashtag) -> search_pb2.Hashtag:
    return search_pb2.Hashtag(name=tag.name, post_count=tag.post_count)


def place_proto(place: Place) -> search_pb2.Place:
    return search_pb2.Place(id=place.id, name=place.name, lat=place.lat, lng=place.lng, post_count=place.post_count)


def suggestion_proto(item: UserDoc | Hashtag | Place) -> search_pb2.Suggestion:
    if isinstance(item, UserDoc):
        return search_pb2.Suggestion(user=user_proto(item))
    if isinstance(item, Hashtag):
        return search_pb2.Suggestion(hashtag=hashtag_proto(item))
    return search_pb2.Suggestion(place=place_proto(item))


class SearchServicer(search_service_pb2_grpc.SearchServiceServicer):
    def __init__(self, service: SearchService, verifier: TokenVerifier, posts: PostPages) -> None:
        self.service = service
        self.verifier = verifier
        self.posts = posts

    async def _posts(self, viewer: int, post_ids: list[int], token: str) -> pb.ListPostsResponse:
        return pb.ListPostsResponse(posts=[compact(p) for p in await self.posts.hydrate(viewer, post_ids)],
                                    next_page_token=token)

    async def Autocomplete(self, request: pb.AutocompleteRequest, context: Context) -> pb.AutocompleteResponse:
        items = await self.service.autocomplete(self.verifier.require_caller(context), request.q)
        return pb.AutocompleteResponse(suggestions=[suggestion_proto(i) for i in items])

    async def Search(self, request: pb.SearchRequest, context: Context) -> pb.SearchResponse:
        viewer = self.verifier.require_caller(context)
        page = await self.service.search(viewer, request.q, request.type, request.page_size, request.page_token)
        reply = pb.SearchResponse(next_page_token=page.next_page_token)
        if page.kind == "USERS":
            reply.users.extend(user_proto(u) for u in page.items)
        elif page.kind == "HASHTAGS":
            reply.hashtags.extend(hashtag_proto(t) for t in page.items)
        elif page.kind == "PLACES":
            reply.places.extend(place_proto(p) for p in page.items)
        else:
            reply.posts.extend(compact(p) for p in await self.posts.hydrate(viewer, page.items))
        return reply

    async def GetHashtag(self, request: pb.GetHashtagRequest, context: Context) -> search_pb2.Hashtag:
        self.verifier.require_caller(context)
        return hashtag_proto(await self.service.hashtag(request.name))

    async def ListHashtagPosts(self, request: pb.ListHashtagPostsRequest, context: Context) -> pb.ListPostsResponse:
        viewer = self.verifier.require_caller(context)
        page = await self.service.hashtag_posts(viewer, request.name, request.order, request.page_size,
                                                request.page_token)
        return await self._posts(viewer, page.items, page.next_page_token)

    async def GetPlace(self, request: pb.GetPlaceRequest, context: Context) -> search_pb2.Place:
        self.verifier.require_caller(context)
        return place_proto(await self.service.place(request.place_id))

    async def ListPlacePosts(self, request: pb.ListPlacePostsRequest, context: Context) -> pb.ListPostsResponse:
        viewer = self.verifier.require_caller(context)
        page = await self.service.place_posts(viewer, request.place_id, request.page_size, request.page_token)
        return await self._posts(viewer, page.items, page.next_page_token)

    async def ListTrendingHashtags(self, request: pb.ListTrendingHashtagsRequest, context: Context
                                   ) -> pb.ListTrendingHashtagsResponse:
        self.verifier.require_caller(context)
        trends = await self.service.trending(request.window)
        return pb.ListTrendingHashtagsResponse(hashtags=[
            search_pb2.TrendingHashtag(name=t.name, author_count=t.author_count, score=t.score) for t in trends])

    async def GetExplore(self, request: pb.GetExploreRequest, context: Context) -> pb.ListPostsResponse:
        viewer = self.verifier.require_caller(context)
        page = await self.service.explore(viewer, request.page_size, request.page_token)
        return await self._posts(viewer, page.items, page.next_page_token)

    async def ListSuggestions(self, request: pb.ListSuggestionsRequest, context: Context
                              ) -> pb.ListSuggestionsResponse:
        found = await self.service.suggestions(self.verifier.require_caller(context), request.page_size)
        return pb.ListSuggestionsResponse(suggestions=[
            search_pb2.UserSuggestion(user=user_proto(u), mutual_count=n) for u, n in found])

    async def ListMutualFollowers(self, request: pb.ListMutualFollowersRequest, context: Context
                                  ) -> pb.ListMutualFollowersResponse:
        viewer = self.verifier.require_caller(context)
        users, total = await self.service.mutual_followers(viewer, request.user_id, request.page_size)
        return pb.ListMutualFollowersResponse(users=[user_proto(u) for u in users], total_count=total)
