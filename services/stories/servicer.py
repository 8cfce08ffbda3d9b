"""StoriesService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf import empty_pb2, timestamp_pb2
from pictor.exports.v1 import exports_pb2
from pictor.stories.v1 import stories_pb2, stories_service_pb2_grpc
from pictor.stories.v1 import stories_service_pb2 as pb

from services.common import exports
from services.common.auth import TokenVerifier
from services.stories.adapters import AuthorSummaries, StoryMedia
from services.stories.service import Highlight, StoriesService, Story, id_millis

Context = grpc.aio.ServicerContext
EMPTY = empty_pb2.Empty()


def _ts(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _ts_ms(ms: int) -> timestamp_pb2.Timestamp:
    """From epoch milliseconds: a tray's 200 timestamps without a datetime each (Timestamp.FromDatetime is
    a fifth of the tray's Python)."""
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=ms % 1000 * 1_000_000)


def audience_name(value: int) -> str:
    try:
        return stories_pb2.Audience.Name(value)
    except ValueError:
        return str(value)  # the service names it


class StoriesServicer(stories_service_pb2_grpc.StoriesServiceServicer):
    def __init__(self, service: StoriesService, verifier: TokenVerifier, people: AuthorSummaries, media: StoryMedia,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.people = people
        self.media = media
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: grpc.aio.ServicerContext
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def _stories(self, viewer_id: int, stories: list[Story]) -> list[stories_pb2.Story]:
        people = await self.people.summaries(list({s.author_id for s in stories}))
        media = await self.media.items(list({s.media_id for s in stories}))
        return [stories_pb2.Story(
            id=s.id, author=people.get(s.author_id), media=media.get(s.media_id),
            audience=stories_pb2.Audience.Value(s.audience), allow_replies=s.allow_replies,
            created_at=_ts(s.created_at), expires_at=_ts(s.expires_at),
            view_count=s.view_count if viewer_id == s.author_id else 0, seen_by_me=s.seen_by_me,
        ) for s in stories]

    async def _highlights(self, viewer_id: int, highlights: list[Highlight], with_stories: bool
                          ) -> list[stories_pb2.Highlight]:
        shown = [s for h in highlights for s in (h.stories if with_stories else [h.cover] if h.cover else [])]
        protos = {p.id: p for p in await self._stories(viewer_id, shown)}
        owners = await self.people.summaries(list({h.owner_id for h in highlights}))
        return [stories_pb2.Highlight(
            id=h.id, owner=owners.get(h.owner_id), title=h.title,
            cover=protos.get(h.cover.id) if h.cover else None,
            stories=[protos[s.id] for s in h.stories] if with_stories else [],
            story_count=len(h.stories), created_at=_ts(h.created_at),
        ) for h in highlights]

    async def CreateStory(self, request: pb.CreateStoryRequest, context: Context) -> stories_pb2.Story:
        author = self.verifier.require_caller(context)
        allow_replies = request.allow_replies if request.HasField("allow_replies") else True
        story = await self.service.create(author, request.media_id, audience_name(request.audience), allow_replies)
        return (await self._stories(author, [story]))[0]

    async def BatchGetStories(self, request: pb.BatchGetStoriesRequest, context: Context
                              ) -> pb.BatchGetStoriesResponse:
        stories = await self.service.visible(request.viewer_id, list(request.story_ids))
        return pb.BatchGetStoriesResponse(stories=await self._stories(request.viewer_id, stories))

    async def DeleteStory(self, request: pb.DeleteStoryRequest, context: Context) -> empty_pb2.Empty:
        await self.service.delete(self.verifier.require_caller(context), request.story_id)
        return EMPTY

    async def GetTray(self, request: pb.GetTrayRequest, context: Context) -> pb.GetTrayResponse:
        entries = await self.service.tray(self.verifier.require_caller(context))
        people = await self.people.summaries([e.user_id for e in entries])
        return pb.GetTrayResponse(entries=[
            stories_pb2.TrayEntry(user=people[e.user_id], story_count=e.story_count,
                                  latest_at=_ts_ms(id_millis(e.latest_story_id)), has_unseen=e.has_unseen)
            for e in entries if e.user_id in people])

    async def ListUserStories(self, request: pb.ListUserStoriesRequest, context: Context) -> pb.ListStoriesResponse:
        viewer = self.verifier.require_caller(context)
        stories = await self.service.user_stories(viewer, request.user_id)
        return pb.ListStoriesResponse(stories=await self._stories(viewer, stories))

    async def CheckStoryAccess(self, request: pb.CheckStoryAccessRequest, context: Context
                               ) -> pb.CheckStoryAccessResponse:
        return pb.CheckStoryAccessResponse(author_id=await self.service.author_seen_by(request.viewer_id,
                                                                                       request.story_id))

    async def ViewStory(self, request: pb.ViewStoryRequest, context: Context) -> pb.ViewStoryResponse:
        await self.service.view(self.verifier.require_caller(context), request.story_id)
        return pb.ViewStoryResponse()

    async def ListStoryViewers(self, request: pb.ListStoryViewersRequest, context: Context
                               ) -> pb.ListStoryViewersResponse:
        caller = self.verifier.require_caller(context)
        story, viewers, token = await self.service.viewers(caller, request.story_id, request.page_size,
                                                           request.page_token)
        people = await self.people.summaries([v.user_id for v in viewers])
        return pb.ListStoryViewersResponse(
            viewers=[stories_pb2.StoryViewer(user=people[v.user_id], viewed_at=_ts(v.viewed_at), reaction=v.reaction)
                     for v in viewers if v.user_id in people],
            view_count=story.view_count, next_page_token=token)

    async def ReactToStory(self, request: pb.ReactToStoryRequest, context: Context) -> empty_pb2.Empty:
        await self.service.react(self.verifier.require_caller(context), request.story_id, request.emoji)
        return EMPTY

    async def ReplyToStory(self, request: pb.ReplyToStoryRequest, context: Context) -> empty_pb2.Empty:
        await self.service.reply(self.verifier.require_caller(context), request.story_id, request.text)
        return EMPTY

    async def ListArchivedStories(self, request: pb.ListArchivedStoriesRequest, context: Context
                                  ) -> pb.ListStoriesResponse:
        author = self.verifier.require_caller(context)
        stories, token = await self.service.archive(author, request.page_size, request.page_token)
        return pb.ListStoriesResponse(stories=await self._stories(author, stories), next_page_token=token)

    async def CreateHighlight(self, request: pb.CreateHighlightRequest, context: Context) -> stories_pb2.Highlight:
        owner = self.verifier.require_caller(context)
        h = await self.service.create_highlight(owner, request.title, list(request.story_ids), request.cover_story_id)
        return (await self._highlights(owner, [h], with_stories=True))[0]

    async def ListUserHighlights(self, request: pb.ListUserHighlightsRequest, context: Context
                                 ) -> pb.ListHighlightsResponse:
        viewer = self.verifier.require_caller(context)
        found = await self.service.highlights(viewer, request.user_id)
        return pb.ListHighlightsResponse(highlights=await self._highlights(viewer, found, with_stories=False))

    async def GetHighlight(self, request: pb.GetHighlightRequest, context: Context) -> stories_pb2.Highlight:
        viewer = self.verifier.require_caller(context)
        h = await self.service.highlight(viewer, request.highlight_id)
        return (await self._highlights(viewer, [h], with_stories=True))[0]

    async def UpdateHighlight(self, request: pb.UpdateHighlightRequest, context: Context) -> stories_pb2.Highlight:
        owner = self.verifier.require_caller(context)
        h = await self.service.update_highlight(
            owner, request.highlight_id, request.title if request.HasField("title") else None,
            list(request.add_story_ids), list(request.remove_story_ids), request.cover_story_id)
        return (await self._highlights(owner, [h], with_stories=True))[0]

    async def DeleteHighlight(self, request: pb.DeleteHighlightRequest, context: Context) -> empty_pb2.Empty:
        await self.service.delete_highlight(self.verifier.require_caller(context), request.highlight_id)
        return EMPTY

    async def AddCloseFriend(self, request: pb.AddCloseFriendRequest, context: Context) -> empty_pb2.Empty:
        await self.service.add_close_friend(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def RemoveCloseFriend(self, request: pb.RemoveCloseFriendRequest, context: Context) -> empty_pb2.Empty:
        await self.service.remove_close_friend(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def ListCloseFriends(self, request: pb.ListCloseFriendsRequest, context: Context
                               ) -> pb.ListCloseFriendsResponse:
        owner = self.verifier.require_caller(context)
        ids, token = await self.service.close_friends(owner, request.page_size, request.page_token)
        people = await self.people.summaries(ids)
        return pb.ListCloseFriendsResponse(users=[people[u] for u in ids if u in people], next_page_token=token)

    async def MuteStories(self, request: pb.MuteStoriesRequest, context: Context) -> empty_pb2.Empty:
        await self.service.mute(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def UnmuteStories(self, request: pb.UnmuteStoriesRequest, context: Context) -> empty_pb2.Empty:
        await self.service.unmute(self.verifier.require_caller(context), request.user_id)
        return EMPTY
