"""The follow graph's rules: follows, requests, blocks, mutes. No gRPC here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.pagination import decode_token, encode_token, iso_time, page_size, positive_int64

DEFAULT_PAGE, MAX_PAGE = 50, 200
DEFAULT_ID_PAGE, MAX_ID_PAGE = 5000, 10_000
MAX_RELATIONSHIPS = 500
MAX_VIEWERS = 1000
TOPIC = "graph"


class FollowState(Enum):
    NOT_FOLLOWING = "NOT_FOLLOWING"
    FOLLOWING = "FOLLOWING"
    REQUESTED = "REQUESTED"


@dataclass(frozen=True)
class Profile:
    """What the graph needs to know about a user (from accounts)."""

    id: int
    is_private: bool


@dataclass(frozen=True)
class Relationship:
    owner_id: int
    following: bool = False
    requested: bool = False
    blocked: bool = False
    muted: bool = False
    owner_is_private: bool = False

    @property
    def can_view(self) -> bool:
        return not self.blocked and (not self.owner_is_private or self.following)


@dataclass(frozen=True)
class Edges:
    """One viewer's edges towards some owners, all read from the viewer's shard."""

    following: set[int]
    requested: set[int]
    blocked: set[int]  # either way
    muted: set[int]


@dataclass(frozen=True)
class Page:
    user_ids: list[int]
    next_cursor: tuple[str, int] | None  # (created_at as ISO 8601, id)
    # Which listing the page is of (its next token's scope); the repository leaves it empty.
    scope: str = ""


class GraphRepository(Protocol):
    async def edges(self, viewer_id: int, owner_ids: list[int]) -> Edges: ...
    # The owner's side, from the owner's shard: which of the viewers follow them (when asked) and which
    # are blocked either way.
    async def audience(self, owner_id: int, viewer_ids: list[int], followers: bool) -> tuple[set[int], set[int]]: ...
    # Writes put their event (follow, unfollow, block, ...) in the outbox with the change, and
    # only when the change changed something.
    async def follow(self, follower_id: int, target_id: int, approved: bool = False) -> bool: ...
    async def unfollow(self, follower_id: int, target_id: int) -> bool: ...
    async def request(self, requester_id: int, target_id: int) -> None: ...
    async def drop_request(self, requester_id: int, target_id: int) -> bool: ...
    async def block(self, user_id: int, target_id: int) -> None: ...
    async def unblock(self, user_id: int, target_id: int) -> None: ...
    async def mute(self, user_id: int, target_id: int) -> None: ...
    async def unmute(self, user_id: int, target_id: int) -> None: ...
    async def list_edges(self, kind: str, user_id: int, limit: int, after: tuple[str, int] | None) -> Page: ...
    async def follower_ids(self, user_id: int, after_id: int, limit: int) -> list[int]: ...
    async def following_ids(self, user_id: int) -> list[int]: ...
    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]: ...


class Profiles(Protocol):
    async def get(self, user_ids: list[int]) -> dict[int, Profile]: ...
    async def put(self, user_id: int, is_private: bool) -> bool: ...


@dataclass
class GraphService:
    repo: GraphRepository
    profiles: Profiles

    async def _visible_target(self, viewer_id: int, target_id: int) -> Profile:
        """The target's profile, or NotFound when it does not exist or either side blocked the other."""
        if target_id == viewer_id:
            raise InvalidArgument("user_id", "that is you")
        profile = (await self.profiles.get([target_id])).get(target_id)
        if profile is None or target_id in (await self.repo.edges(viewer_id, [target_id])).blocked:
            raise NotFound(f"user {target_id} not found", reason="USER_NOT_FOUND")
        return profile

    async def set_account_privacy(self, user_id: int, is_private: bool) -> None:
        """From accounts only (mesh): the user exists, and whether the account is private. Idempotent."""
        if user_id <= 0 or not await self.profiles.put(user_id, is_private):
            raise InvalidArgument("user_id", "user_id must be the id of an account")

    async def follow(self, viewer_id: int, target_id: int) -> FollowState:
        target = await self._visible_target(viewer_id, target_id)
        edges = await self.repo.edges(viewer_id, [target_id])
        if target_id in edges.following:
            return FollowState.FOLLOWING
        if target.is_private:
            await self.repo.request(viewer_id, target_id)
            return FollowState.REQUESTED
        await self.repo.follow(viewer_id, target_id)
        return FollowState.FOLLOWING

    async def unfollow(self, viewer_id: int, target_id: int) -> FollowState:
        if target_id == viewer_id:
            raise InvalidArgument("user_id", "that is you")
        await self.repo.drop_request(viewer_id, target_id)
        await self.repo.unfollow(viewer_id, target_id)
        return FollowState.NOT_FOLLOWING

    async def approve(self, owner_id: int, requester_id: int) -> None:
        if not await self.repo.drop_request(requester_id, owner_id):
            raise NotFound(f"no follow request from user {requester_id}", reason="FOLLOW_REQUEST_NOT_FOUND")
        await self.repo.follow(requester_id, owner_id, approved=True)

    async def reject(self, owner_id: int, requester_id: int) -> None:
        if not await self.repo.drop_request(requester_id, owner_id):
            raise NotFound(f"no follow request from user {requester_id}", reason="FOLLOW_REQUEST_NOT_FOUND")

    async def remove_follower(self, owner_id: int, follower_id: int) -> None:
        await self.repo.unfollow(follower_id, owner_id)

    async def block(self, viewer_id: int, target_id: int) -> None:
        if target_id == viewer_id:
            raise InvalidArgument("user_id", "you cannot block yourself")
        if not await self.profiles.get([target_id]):
            raise NotFound(f"user {target_id} not found", reason="USER_NOT_FOUND")
        await self.repo.block(viewer_id, target_id)

    async def unblock(self, viewer_id: int, target_id: int) -> None:
        await self.repo.unblock(viewer_id, target_id)

    async def mute(self, viewer_id: int, target_id: int) -> None:
        await self._visible_target(viewer_id, target_id)
        await self.repo.mute(viewer_id, target_id)

    async def unmute(self, viewer_id: int, target_id: int) -> None:
        await self.repo.unmute(viewer_id, target_id)

    async def follower_ids(self, user_id: int, size: int, token: str) -> tuple[list[int], str]:
        limit = page_size(size, default=DEFAULT_ID_PAGE, maximum=MAX_ID_PAGE)
        cursor = decode_token(token, f"follower_ids:{user_id}", after=positive_int64)
        ids = await self.repo.follower_ids(user_id, cursor["after"] if cursor else 0, limit)
        return ids, encode_token(f"follower_ids:{user_id}", after=ids[-1]) if len(ids) == limit else ""

    async def following_ids(self, user_id: int) -> list[int]:
        return await self.repo.following_ids(user_id)

    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]:
        return await self.repo.exclusions(user_id)

    async def relationships(self, viewer_id: int, owner_ids: list[int]) -> list[Relationship]:
        """How `viewer_id` (0: signed out) relates to each owner; unknown owners are left out."""
        if len(owner_ids) > MAX_RELATIONSHIPS:
            raise InvalidArgument("owner_ids", f"at most {MAX_RELATIONSHIPS} owners per call")
        owners = list(dict.fromkeys(owner_ids))
        profiles = await self.profiles.get(owners)
        edges = await self.repo.edges(viewer_id, owners) if viewer_id else Edges(set(), set(), set(), set())
        result = []
        for owner_id in owners:
            profile = profiles.get(owner_id)
            if profile is None:
                continue
            result.append(Relationship(
                owner_id=owner_id,
                following=owner_id == viewer_id or owner_id in edges.following,
                requested=owner_id in edges.requested,
                blocked=owner_id in edges.blocked,
                muted=owner_id in edges.muted,
                owner_is_private=profile.is_private,
            ))
        return result

    async def filter_viewers(self, owner_id: int, viewer_ids: list[int]) -> tuple[bool, list[int]]:
        """Whether the owner exists, and which of the viewers may see them (Relationship.can_view), in the
        order asked: one read of the owner's shard for any number of viewers (0: signed out)."""
        if len(viewer_ids) > MAX_VIEWERS:
            raise InvalidArgument("viewer_ids", f"at most {MAX_VIEWERS} viewers per call")
        profile = (await self.profiles.get([owner_id])).get(owner_id)
        if profile is None:
            return False, []
        viewers = list(dict.fromkeys(viewer_ids))
        signed_in = [v for v in viewers if v and v != owner_id]
        following, blocked = await self.repo.audience(owner_id, signed_in, followers=profile.is_private) \
            if signed_in else (set(), set())
        return True, [v for v in viewers if Relationship(
            owner_id=owner_id, following=v == owner_id or v in following, blocked=v in blocked,
            owner_is_private=profile.is_private).can_view]

    async def list_users(self, kind: str, viewer_id: int, user_id: int, size: int, token: str) -> Page:
        """followers / following of `user_id`, as `viewer_id` may see them."""
        limit = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        cursor = decode_token(token, f"{kind}:{user_id}", t=iso_time, id=positive_int64)
        relation = (await self.relationships(viewer_id, [user_id]) or [None])[0]
        if relation is None or relation.blocked:
            raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        if not relation.can_view:
            raise PermissionDenied("this account is private: follow it to see its connections",
                                   reason="ACCOUNT_PRIVATE")
        page = await self.repo.list_edges(kind, user_id, limit, (cursor["t"], cursor["id"]) if cursor else None)
        hidden = (await self.repo.edges(viewer_id, page.user_ids)).blocked if viewer_id else set()
        return Page([u for u in page.user_ids if u not in hidden], page.next_cursor, f"{kind}:{user_id}")

    async def list_own(self, kind: str, owner_id: int, size: int, token: str) -> Page:
        """One of the owner's own lists ("requests": follow requests to me, "blocked": whom I block)."""
        limit = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        scope = f"{kind}:{owner_id}"
        cursor = decode_token(token, scope, t=iso_time, id=positive_int64)
        page = await self.repo.list_edges(kind, owner_id, limit, (cursor["t"], cursor["id"]) if cursor else None)
        return Page(page.user_ids, page.next_cursor, scope)


def page_token(page: Page) -> str:
    if page.next_cursor is None:
        return ""
    return encode_token(page.scope, t=page.next_cursor[0], id=page.next_cursor[1])
