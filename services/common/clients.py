"""Typed clients for calls between services of the mesh.

One channel per target per process. Every call passes `timeout=outbound_timeout()`,
what is left of the deadline of the call being served, so no call outlives its
caller; the cleanup calls, made by a worker and serving no caller, have their
own longer timeout (a purge may wait for a counter flush, a release for uploads).
"""

from __future__ import annotations

import ipaddress
import json
import logging

import grpc
from google.rpc import error_details_pb2, status_pb2
from pictor.accounts.v1 import accounts_pb2, accounts_service_pb2, accounts_service_pb2_grpc
from pictor.engagement.v1 import engagement_service_pb2, engagement_service_pb2_grpc
from pictor.graph.v1 import graph_service_pb2, graph_service_pb2_grpc
from pictor.media.v1 import media_pb2, media_service_pb2, media_service_pb2_grpc
from pictor.messaging.v1 import messaging_service_pb2, messaging_service_pb2_grpc
from pictor.moderation.v1 import moderation_service_pb2, moderation_service_pb2_grpc
from pictor.posts.v1 import posts_pb2, posts_service_pb2, posts_service_pb2_grpc
from pictor.realtime.v1 import realtime_pb2, realtime_service_pb2, realtime_service_pb2_grpc
from pictor.stories.v1 import stories_pb2, stories_service_pb2, stories_service_pb2_grpc

from services.common.config import Settings
from services.common.deadlines import outbound_timeout
from services.common.errors import InvalidArgument
from services.common.mesh_tls import mesh_channel
from services.common.registry import ServiceSpec, by_name

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    # A service that was restarted is called again within a second of its return, not after
    # gRPC's default reconnect backoff (up to 2 minutes).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
BATCH = 500
CLEANUP_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)


def balanced_target(addresses: list[str]) -> str:
    """The channel target for a service's replicas: a list of loopback (or any literal IP) addresses
    as one `ipv4:` target, or a name for DNS to resolve to every replica (Kubernetes' headless
    Service, compose's service name)."""
    hosts = [address.rpartition(":")[0] for address in addresses]
    if all(_is_ip(host) for host in hosts):
        return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)
    return f"dns:///{addresses[0]}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def balanced_config(spec: ServiceSpec) -> str:
    """Round robin over the replicas, each call to the next one that is READY and whose gRPC health
    says SERVING (a replica draining on SIGTERM leaves the rotation before it stops; one killed
    leaves it when its connection drops)."""
    return json.dumps({"loadBalancingConfig": [{"round_robin": {}}],
                       "healthCheckConfig": {"serviceName": spec.proto_services[0]}})


class MeshChannels:
    """Channels to the services, mutual TLS with the certificate of `identity` (by default the
    process's, settings.mesh_identity: a service's own, a worker's service's)."""

    def __init__(self, settings: Settings, identity: str = "") -> None:
        self.settings = settings
        self.identity = identity or settings.mesh_identity
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, service: str) -> grpc.aio.Channel:
        channel = self._channels.get(service)
        if channel is None:
            if not self.identity:
                raise RuntimeError("no mesh identity to call other services with: set PICTOR_MESH_IDENTITY")
            spec = by_name(service)
            target = balanced_target(self.settings.replica_addresses(spec))
            # One address: the plain channel it always was (a service NOT_SERVING still answers with its
            # own reason); several, or a name for several: balanced.
            balanced = [("grpc.service_config", balanced_config(spec))] if target.startswith(("ipv4:", "dns:")) else []
            channel = self._channels[service] = mesh_channel(target, service, self.settings.mesh_dir, self.identity,
                                                             options=[*CHANNEL_OPTIONS, *balanced])
        return channel

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


def _batches(ids: list[int]) -> list[list[int]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i:i + BATCH] for i in range(0, len(unique), BATCH)]


def passed_on(error: grpc.aio.AioRpcError) -> InvalidArgument | None:
    """The callee's INVALID_ARGUMENT as our own, when it names a field the caller passed through to it
    unchanged (a page token, a page size); None for any other failure."""
    if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
        return None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info) and "field" in info.metadata:
                    return InvalidArgument(info.metadata["field"], error.details() or "invalid argument",
                                           reason=info.reason)
    return None


class AccountsClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = accounts_service_pb2_grpc.AccountsServiceStub(channels.channel("accounts"))

    async def get_users(self, user_ids: list[int]) -> dict[int, accounts_pb2.User]:
        found: dict[int, accounts_pb2.User] = {}
        for batch in _batches(user_ids):
            reply = await self._stub.BatchGetUsers(
                accounts_service_pb2.BatchGetUsersRequest(user_ids=batch), timeout=outbound_timeout())
            found.update((u.id, u) for u in reply.users)
        return found

    async def summaries(self, user_ids: list[int]) -> dict[int, accounts_pb2.UserSummary]:
        """The known users among these, small (id, username, display name, avatar)."""
        users = await self.get_users(user_ids) if user_ids else {}
        return {user_id: user_summary(user) for user_id, user in users.items()}

    async def user_id_by_username(self, username: str) -> int | None:
        """The id of the user so named (any case), None when there is none."""
        try:
            reply = await self._stub.GetUserByUsername(accounts_service_pb2.GetUserByUsernameRequest(username=username),
                                                       timeout=outbound_timeout())
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.id

    async def emails(self, user_ids: list[int]) -> dict[int, str]:
        """Each known user's email address (for digests only)."""
        found: dict[int, str] = {}
        for batch in _batches(user_ids):
            reply = await self._stub.BatchGetEmails(accounts_service_pb2.BatchGetEmailsRequest(user_ids=batch),
                                                    timeout=outbound_timeout())
            found.update(reply.emails)
        return found

    async def device_ids(self, user_ids: list[int]) -> dict[int, set[int]]:
        """Each user's device ids (those with a public key published; users without any are left out)."""
        found: dict[int, set[int]] = {}
        for batch in _batches(user_ids):
            reply = await self._stub.ListDeviceIds(accounts_service_pb2.ListDeviceIdsRequest(user_ids=batch),
                                                   timeout=outbound_timeout())
            for device in reply.devices:
                found.setdefault(device.user_id, set()).add(device.device_id)
        return found

    async def showing_activity(self, user_ids: list[int]) -> set[int]:
        """Which of the users have show_activity_status on."""
        found: set[int] = set()
        for batch in _batches(user_ids):
            reply = await self._stub.GetActivityStatusSettings(
                accounts_service_pb2.GetActivityStatusSettingsRequest(user_ids=batch), timeout=outbound_timeout())
            found.update(reply.showing_user_ids)
        return found


def user_summary(user: accounts_pb2.User) -> accounts_pb2.UserSummary:
    return accounts_pb2.UserSummary(id=user.id, username=user.username, display_name=user.display_name,
                                    avatar_url=user.avatar_url)


class GraphClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = graph_service_pb2_grpc.GraphServiceStub(channels.channel("graph"))

    async def relationships(self, viewer_id: int, owner_ids: list[int]) -> dict[int, graph_service_pb2.Relationship]:
        """How the viewer (0: signed out) relates to each known owner."""
        found: dict[int, graph_service_pb2.Relationship] = {}
        for batch in _batches(owner_ids):
            reply = await self._stub.GetRelationships(
                graph_service_pb2.GetRelationshipsRequest(viewer_id=viewer_id, owner_ids=batch),
                timeout=outbound_timeout())
            found.update((r.owner_id, r) for r in reply.relationships)
        return found

    async def filter_viewers(self, owner_id: int, viewer_ids: list[int]) -> tuple[bool, set[int]]:
        """Whether the owner exists, and which of the viewers may see them."""
        allowed: set[int] = set()
        for batch in _batches(viewer_ids):
            reply = await self._stub.FilterViewers(
                graph_service_pb2.FilterViewersRequest(owner_id=owner_id, viewer_ids=batch), timeout=outbound_timeout())
            if not reply.owner_found:
                return False, set()
            allowed.update(reply.allowed_viewer_ids)
        return True, allowed

    async def follower_id_pages(self, user_id: int, page_size: int = 5000):
        """The user's follower ids, one page (a list) at a time."""
        token = ""
        while True:
            reply = await self._stub.ListFollowerIds(
                graph_service_pb2.ListFollowerIdsRequest(user_id=user_id, page_size=page_size, page_token=token),
                timeout=outbound_timeout())
            if reply.user_ids:
                yield list(reply.user_ids)
            token = reply.next_page_token
            if not token:
                return

    async def following_ids(self, user_id: int) -> list[int]:
        reply = await self._stub.ListFollowingIds(graph_service_pb2.ListFollowingIdsRequest(user_id=user_id),
                                                  timeout=outbound_timeout())
        return list(reply.user_ids)

    async def set_account_privacy(self, user_id: int, is_private: bool) -> None:
        await self._stub.SetAccountPrivacy(
            graph_service_pb2.SetAccountPrivacyRequest(user_id=user_id, is_private=is_private),
            timeout=outbound_timeout())

    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]:
        """(muted, blocked either way)."""
        reply = await self._stub.GetExclusions(graph_service_pb2.GetExclusionsRequest(user_id=user_id),
                                               timeout=outbound_timeout())
        return list(reply.muted_ids), list(reply.blocked_ids)


class MediaClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = media_service_pb2_grpc.MediaServiceStub(channels.channel("media"))

    async def get_media(self, media_ids: list[int]) -> dict[int, media_pb2.Media]:
        """Media items with URLs signed for whoever the caller has decided may see them."""
        found: dict[int, media_pb2.Media] = {}
        for batch in _batches(media_ids):
            reply = await self._stub.BatchGetMedia(
                media_service_pb2.BatchGetMediaRequest(media_ids=batch), timeout=outbound_timeout())
            found.update((m.id, m) for m in reply.media)
        return found

    async def sign_urls(self, media_ids: list[int]) -> dict[int, tuple[int, str]]:
        """A fresh (exp, sig) for each media item's URLs (posts re-signs cached shapes with them)."""
        found: dict[int, tuple[int, str]] = {}
        for batch in _batches(media_ids):
            reply = await self._stub.SignMediaUrls(
                media_service_pb2.SignMediaUrlsRequest(media_ids=batch), timeout=outbound_timeout())
            found.update((s.media_id, (s.exp, s.sig)) for s in reply.signatures)
        return found

    async def url_signing_key(self) -> tuple[int, bytes]:
        """(exp, key): the key that signs media URLs expiring at exp, the expiry media gives them now (the
        feed re-signs cached shapes with it: services.media.signing.ExpiryKey)."""
        reply = await self._stub.GetUrlSigningKey(media_service_pb2.GetUrlSigningKeyRequest(),
                                                  timeout=outbound_timeout())
        return reply.exp, reply.key

    async def attach_media(self, owner_id: int, post_id: int, media_ids: list[int], confirmed: bool = False,
                           full_screen: bool = False) -> None:
        """Have media record that the post (confirmed: the story; full_screen: with the photos' 9:16
        renditions made) uses these media; its INVALID_ARGUMENT
        (MEDIA_NOT_FOUND: one does not exist or is not the owner's) comes back as our own, for our caller."""
        try:
            await self._stub.AttachMedia(
                media_service_pb2.AttachMediaRequest(owner_id=owner_id, post_id=post_id, media_ids=media_ids,
                                                     confirmed=confirmed, full_screen=full_screen),
                timeout=outbound_timeout())
        except grpc.aio.AioRpcError as error:
            raise passed_on(error) or error

    async def set_avatar(self, owner_id: int, media_id: int) -> None:
        """Have media make the owner's photo their avatar (0: none); its INVALID_ARGUMENT (MEDIA_NOT_FOUND,
        AVATAR_NOT_A_PHOTO) comes back as our own, for our caller."""
        try:
            await self._stub.SetAvatar(media_service_pb2.SetAvatarRequest(owner_id=owner_id, media_id=media_id),
                                       timeout=outbound_timeout())
        except grpc.aio.AioRpcError as error:
            raise passed_on(error) or error

    async def release_media(self, owner_id: int, media_ids: list[int],
                            post_id: int = 0) -> media_service_pb2.ReleaseMediaResponse:
        """Forget the deleted post's use of these media; delete those no post uses, and unused blobs."""
        return await self._stub.ReleaseMedia(
            media_service_pb2.ReleaseMediaRequest(owner_id=owner_id, media_ids=media_ids, post_id=post_id),
            timeout=CLEANUP_TIMEOUT_S)


class PostsClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = posts_service_pb2_grpc.PostsServiceStub(channels.channel("posts"))

    async def visible_posts(self, viewer_id: int, post_ids: list[int], viewer_state: bool = True
                            ) -> list[posts_pb2.Post]:
        """Hydrated posts the viewer may see, in the order asked (at most 100 ids); without counts,
        likes and saves unless `viewer_state`."""
        reply = await self._stub.BatchGetPosts(
            posts_service_pb2.BatchGetPostsRequest(viewer_id=viewer_id, post_ids=post_ids,
                                                   without_viewer_state=not viewer_state),
            timeout=outbound_timeout())
        return list(reply.posts)

    async def visible_authors(self, viewer_id: int, post_ids: list[int]) -> dict[int, int]:
        """post_id -> author_id of the posts the viewer (0: signed out) may see; nothing hydrated."""
        reply = await self._stub.CheckPostAccess(
            posts_service_pb2.CheckPostAccessRequest(viewer_id=viewer_id, post_ids=post_ids),
            timeout=outbound_timeout())
        return {p.post_id: p.author_id for p in reply.posts}

    async def recent_ids(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]:
        """(post_id, author_id) of the authors' newest live posts, newest first."""
        reply = await self._stub.ListRecentPostIds(
            posts_service_pb2.ListRecentPostIdsRequest(author_ids=author_ids, limit=limit),
            timeout=outbound_timeout())
        return [(p.post_id, p.author_id) for p in reply.posts]

    async def rebuild_timelines(self, author_ids: list[int]) -> None:
        """Have posts rebuild the authors' timelines that Redis lacks (it owns them)."""
        await self._stub.RebuildTimelines(posts_service_pb2.RebuildTimelinesRequest(author_ids=author_ids),
                                          timeout=outbound_timeout())

    async def existing_post_ids(self, post_ids: list[int]) -> set[int]:
        """Which of these posts exist, deleted ones included."""
        found: set[int] = set()
        for batch in _batches(post_ids):
            reply = await self._stub.CheckPostsExist(posts_service_pb2.CheckPostsExistRequest(post_ids=batch),
                                                     timeout=CLEANUP_TIMEOUT_S)
            found.update(reply.existing_post_ids)
        return found


class EngagementClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = engagement_service_pb2_grpc.EngagementServiceStub(channels.channel("engagement"))

    async def post_states(self, viewer_id: int, post_ids: list[int]) -> dict[int, engagement_service_pb2.PostState]:
        """Counts, and whether the viewer (0: signed out) liked and saved each post."""
        found: dict[int, engagement_service_pb2.PostState] = {}
        for batch in _batches(post_ids):
            reply = await self._stub.GetPostStates(
                engagement_service_pb2.GetPostStatesRequest(viewer_id=viewer_id, post_ids=batch),
                timeout=outbound_timeout())
            found.update((s.post_id, s) for s in reply.states)
        return found

    async def post_states_if_up(self, viewer_id: int, post_ids: list[int]
                                ) -> dict[int, engagement_service_pb2.PostState]:
        """post_states, or nothing while engagement is unavailable: posts without their counts beat
        no posts (a feed or a grid survives an engagement outage)."""
        if not post_ids:
            return {}
        try:
            return await self.post_states(viewer_id, post_ids)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            log.warning("engagement unavailable; posts go out without likes and counts")
            return {}

    async def saved_post_ids(self, user_id: int, page_size: int, page_token: str) -> tuple[list[int], str]:
        """A page of the posts the user saved, newest saved first, and the next page's token."""
        try:
            reply = await self._stub.ListSavedPostIds(
                engagement_service_pb2.ListSavedPostIdsRequest(user_id=user_id, page_size=page_size,
                                                               page_token=page_token),
                timeout=outbound_timeout())
        except grpc.aio.AioRpcError as error:
            raise passed_on(error) or error
        return list(reply.post_ids), reply.next_page_token

    async def purge_post(self, post_id: int) -> engagement_service_pb2.PurgePostResponse:
        """Forget a deleted post's likes, comments, saves and counts."""
        return await self._stub.PurgePost(engagement_service_pb2.PurgePostRequest(post_id=post_id),
                                          timeout=CLEANUP_TIMEOUT_S)


class StoriesClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = stories_service_pb2_grpc.StoriesServiceStub(channels.channel("stories"))

    async def visible_stories(self, viewer_id: int, story_ids: list[int]) -> list[stories_pb2.Story]:
        """Hydrated stories the viewer may see now, in the order asked."""
        found: list[stories_pb2.Story] = []
        for batch in _batches(story_ids):
            reply = await self._stub.BatchGetStories(
                stories_service_pb2.BatchGetStoriesRequest(viewer_id=viewer_id, story_ids=batch),
                timeout=outbound_timeout())
            found.extend(reply.stories)
        return found


class RealtimeClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = realtime_service_pb2_grpc.RealtimeServiceStub(channels.channel("realtime"))

    async def classes_if_up(self, user_ids: list[int]) -> dict[int, set[str]] | None:
        """Each user's classes by name ("LIVE", "ACTIVE", "POPULAR", ...), from the classifier; None while
        realtime is unavailable (the caller falls back to treating everyone alike)."""
        found: dict[int, set[str]] = {}
        try:
            for batch in _batches(user_ids):
                reply = await self._stub.BatchGetUserClasses(
                    realtime_service_pb2.BatchGetUserClassesRequest(user_ids=batch), timeout=outbound_timeout())
                found.update((u.user_id, {realtime_pb2.UserClass.Name(c).removeprefix("USER_CLASS_")
                                          for c in u.classes}) for u in reply.users)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            log.warning("realtime unavailable (%s): user classes unknown", error.code().name)
            return None
        return found


class MessagingClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = messaging_service_pb2_grpc.MessagingServiceStub(channels.channel("messaging"))

    async def contacts(self, user_id: int, among: list[int] | None = None) -> set[int]:
        """Who shares an accepted conversation with the user (of `among`, when given)."""
        reply = await self._stub.ListContacts(messaging_service_pb2.ListContactsRequest(
            user_id=user_id, among=among or []), timeout=outbound_timeout())
        return set(reply.user_ids)


class ModerationClient:
    def __init__(self, channels: MeshChannels) -> None:
        self._stub = moderation_service_pb2_grpc.ModerationServiceStub(channels.channel("moderation"))

    async def is_moderator(self, user_id: int) -> bool:
        """Whether the user is a moderator (who may see content a moderator hid)."""
        reply = await self._stub.CheckModerator(moderation_service_pb2.CheckModeratorRequest(user_id=user_id),
                                                timeout=outbound_timeout())
        return reply.is_moderator
