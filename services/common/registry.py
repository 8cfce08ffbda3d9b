"""The one place that defines the services (and workers) of the mesh.

The launcher, the Envoy config, docker-compose.yml, the reflection catalogue and
the tests all derive from SERVICES. Adding a service means adding a line here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    # Short name: the process name, the Envoy cluster, the compose service and
    # the PICTOR_<NAME>_* environment prefix.
    name: str
    # Default gRPC port on loopback (overridden by PICTOR_<NAME>_PORT).
    port: int
    # Fully qualified proto services this process serves.
    proto_services: tuple[str, ...]
    # Generated modules (pb2) that define those services, for reflection.
    proto_modules: tuple[str, ...]
    # Methods without a JSON route that outside gRPC clients may still call
    # through the gateway (a stream of typed events, or the typed reply of a
    # route whose JSON the service writes: services.mesh.http_rules.JSON_TWIN_SUFFIX);
    # the others without one are for the mesh only.
    gateway_grpc_methods: tuple[str, ...] = ()
    # Who may call each of its methods for the mesh only (those mesh_only_methods lists): method ->
    # the identities whose mesh certificates may (services of this registry; a worker calls as
    # its service; TOOLS: operator commands on the host). Any other caller is PERMISSION_DENIED.
    # tests/mesh/test_mesh_identity.py checks it against the call graph derived from the code.
    internal_callers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def module(self) -> str:
        """The Python module whose `main()` runs this service."""
        return f"services.{self.name}.server"

    @property
    def env_prefix(self) -> str:
        return f"PICTOR_{self.name.upper()}"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="accounts",
        port=7051,
        proto_services=("pictor.accounts.v1.AccountsService",),
        proto_modules=("pictor.accounts.v1.accounts_service_pb2",),
        internal_callers=(
            ("BatchGetEmails", ("notifications",)),
            ("BatchGetUsers", ("engagement", "feed", "graph", "messaging", "moderation", "notifications", "posts", "realtime",
                               "stories")),
            ("GetActivityStatusSettings", ("realtime",)),
            ("ListDeviceIds", ("messaging",)),
            ("ScanUsers", ("search",)),
        ),
    ),
    ServiceSpec(
        name="graph",
        port=7052,
        proto_services=("pictor.graph.v1.GraphService",),
        proto_modules=("pictor.graph.v1.graph_service_pb2",),
        internal_callers=(
            ("ExportUserData", ("accounts",)),
            ("FilterViewers", ("stories",)),
            ("GetExclusions", ("feed", "search")),
            ("GetRelationships", ("accounts", "engagement", "messaging", "moderation", "notifications", "posts", "realtime",
                                  "search", "stories")),
            ("ListFollowerIds", ("feed", "realtime")),
            ("ListFollowingIds", ("feed", "realtime", "search", "stories")),
            ("SetAccountPrivacy", ("accounts",)),
        ),
    ),
    ServiceSpec(
        name="posts",
        port=7053,
        proto_services=("pictor.posts.v1.PostsService",),
        proto_modules=("pictor.posts.v1.posts_service_pb2",),
        internal_callers=(
            ("BatchGetPosts", ("feed", "messaging", "notifications", "search")),
            ("CheckPostAccess", ("engagement", "messaging", "moderation", "notifications")),
            ("CheckPostsExist", ("media",)),
            ("ExportUserData", ("accounts",)),
            ("ListRecentPostIds", ("feed",)),
            ("RebuildTimelines", ("feed",)),
            ("ScanPosts", ("search",)),
        ),
    ),
    ServiceSpec(
        name="media",
        port=7054,
        proto_services=("pictor.media.v1.MediaService",),
        proto_modules=("pictor.media.v1.media_service_pb2",),
        internal_callers=(
            ("AttachMedia", ("messaging", "posts", "stories")),
            ("SetAvatar", ("accounts",)),
            ("BatchGetMedia", ("messaging", "posts", "stories")),
            ("SignMediaUrls", ("posts",)),
            ("GetUrlSigningKey", ("feed",)),
            ("ExportUserData", ("accounts",)),
            ("ReadOriginal", ("accounts",)),
            ("ReleaseMedia", ("messaging", "posts", "stories")),
            ("StreamUpload", ("tools",)),
        ),
    ),
    ServiceSpec(
        name="feed",
        port=7055,
        proto_services=("pictor.feed.v1.FeedService",),
        proto_modules=("pictor.feed.v1.feed_service_pb2",),
        gateway_grpc_methods=("GetFeed",),
    ),
    ServiceSpec(
        name="engagement",
        port=7056,
        proto_services=("pictor.engagement.v1.EngagementService",),
        proto_modules=("pictor.engagement.v1.engagement_service_pb2",),
        internal_callers=(
            ("CheckCommentAccess", ("moderation",)),
            ("ExportUserData", ("accounts",)),
            ("GetPostStates", ("feed", "posts")),
            ("ListSavedPostIds", ("posts",)),
            ("PurgePost", ("posts",)),
            ("ScanLikes", ("search",)),
        ),
    ),
    ServiceSpec(
        name="notifications",
        port=7057,
        proto_services=("pictor.notifications.v1.NotificationsService",),
        proto_modules=("pictor.notifications.v1.notifications_service_pb2",),
        internal_callers=(
            ("ExportUserData", ("accounts",)),
        ),
    ),
    ServiceSpec(
        name="realtime",
        port=7058,
        proto_services=("pictor.realtime.v1.RealtimeService",),
        proto_modules=("pictor.realtime.v1.realtime_service_pb2",),
        gateway_grpc_methods=("Subscribe",),
        internal_callers=(
            ("BatchGetUserClasses", ("feed",)),
        ),
    ),
    ServiceSpec(
        name="stories",
        port=7059,
        proto_services=("pictor.stories.v1.StoriesService",),
        proto_modules=("pictor.stories.v1.stories_service_pb2",),
        internal_callers=(
            ("BatchGetStories", ("messaging",)),
            ("CheckStoryAccess", ("moderation",)),
            ("ExportUserData", ("accounts",)),
        ),
    ),
    ServiceSpec(
        name="messaging",
        port=7060,
        proto_services=("pictor.messaging.v1.MessagingService",),
        proto_modules=("pictor.messaging.v1.messaging_service_pb2",),
        internal_callers=(
            ("CheckMessageAccess", ("moderation",)),
            ("ListContacts", ("realtime",)),
            ("ExportUserData", ("accounts",)),
        ),
    ),
    ServiceSpec(
        name="search",
        port=7061,
        proto_services=("pictor.search.v1.SearchService",),
        proto_modules=("pictor.search.v1.search_service_pb2",),
    ),
    ServiceSpec(
        name="moderation",
        port=7062,
        proto_services=("pictor.moderation.v1.ModerationService",),
        proto_modules=("pictor.moderation.v1.moderation_service_pb2",),
        internal_callers=(
            ("CheckModerator", ("posts",)),
            ("ExportUserData", ("accounts",)),
        ),
    ),
)


@dataclass(frozen=True)
class WorkerSpec:
    """A background process of the mesh: consumes events, serves no port."""

    name: str
    module: str
    # How many the launcher starts (PICTOR_<NAME>_REPLICAS overrides); they
    # share the work through their consumer group.
    replicas: int = 1

    @property
    def identity(self) -> str:
        """Whose mesh certificate it calls with: its service's (services.<service>.worker)."""
        return self.module.split(".")[1]

    @property
    def env_prefix(self) -> str:
        return f"PICTOR_{self.name.upper()}"


WORKERS: tuple[WorkerSpec, ...] = (
    # Moves every service's outbox to the streams (services.common.outbox).
    WorkerSpec(name="relay", module="services.mesh.relay"),
    WorkerSpec(name="profile_counts", module="services.accounts.worker"),
    # accounts': builds the data exports from the owners' ExportUserData (services.accounts.exports).
    WorkerSpec(name="exporter", module="services.accounts.export_worker"),
    WorkerSpec(name="fanout", module="services.feed.worker"),
    WorkerSpec(name="counters", module="services.engagement.worker"),
    WorkerSpec(name="cleanup", module="services.posts.worker"),
    # media's: expired uploads, media in no post, blobs nobody names (services.media.collector).
    WorkerSpec(name="collector", module="services.media.worker"),
    # and the video transcoder: PROCESSING videos to READY or FAILED, each job in a child process
    # (services.media.transcoder); never in the media service's own process.
    WorkerSpec(name="video_transcoder", module="services.media.video_worker"),
    # notifications': acts from the event bus into notifications (services.notifications.inbox),
    WorkerSpec(name="notifier", module="services.notifications.worker"),
    # and the email digest, with its projection of presence (services.notifications.digest).
    WorkerSpec(name="digest", module="services.notifications.digest"),
    # realtime's: notification and presence events into the users' replay buffers; presence sweeps.
    WorkerSpec(name="dispatch", module="services.realtime.worker"),
    # realtime's: labels every user LIVE, ACTIVE, PASSIVE, INACTIVE, POPULAR (services.realtime.classes).
    WorkerSpec(name="classifier", module="services.realtime.classifier"),
    # stories': a deleted story's media released, its highlights and tray entries cleaned (services.stories.cleanup).
    WorkerSpec(name="story_cleanup", module="services.stories.worker"),
    # messaging's: story replies become direct messages (services.messaging.story_replies); hides
    # the messages a moderator hid (services.messaging.moderation).
    WorkerSpec(name="story_replies", module="services.messaging.worker"),
    # search's: users, posts, follows and likes from the event bus into the index (services.search.indexer),
    WorkerSpec(name="indexer", module="services.search.worker"),
    # and explore's item-item co-engagement model, refreshed every PICTOR_EXPLORE_MODEL_EVERY_S (services.search.model).
    WorkerSpec(name="explore_model", module="services.search.model_worker"),
)


# Each process serves Prometheus metrics (services.common.metrics) on a port of its own: a service
# on its gRPC port + PICTOR_METRICS_PORT_OFFSET (0: no metrics), a worker on
# PICTOR_WORKER_METRICS_BASE + its place in WORKERS (1-based); PICTOR_<NAME>_METRICS_PORT sets one.
METRICS_PORT_OFFSET = 1000
WORKER_METRICS_BASE = 9200


def default_metrics_port(name: str, offset: int = METRICS_PORT_OFFSET, worker_base: int = WORKER_METRICS_BASE) -> int:
    """The metrics port of the service or worker `name` (0 when the offset is 0: metrics are off)."""
    if offset == 0:
        return 0
    for spec in SERVICES:
        if spec.name == name:
            return spec.port + offset
    for place, worker in enumerate(WORKERS, 1):
        if worker.name == name:
            return worker_base + place
    raise KeyError(f"no service or worker named {name!r}")


def by_name(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"no service named {name!r}; known: {[s.name for s in SERVICES]}")


# Operator commands run on the host (the search index rebuild runs as search): their own identity.
TOOLS = "tools"
# Envoy's identity toward the services.
GATEWAY = "gateway"


def mesh_identities() -> tuple[str, ...]:
    """Every identity that gets a mesh certificate: the services, the gateway, the workers' (a
    worker calls as its service; the relay as "mesh") and the operator's tools."""
    names = [s.name for s in SERVICES] + [GATEWAY] + [w.identity for w in WORKERS] + [TOOLS]
    return tuple(dict.fromkeys(names))


def internal_callers() -> dict[str, frozenset[str]]:
    """gRPC path of each mesh-only method -> the identities allowed to call it (empty: nobody)."""
    declared = {}
    for spec in SERVICES:
        callers = dict(spec.internal_callers)
        for path in mesh_only_methods(spec):
            declared[path] = frozenset(callers.get(path.rsplit("/", 1)[1], ()))
    return declared


def all_proto_services() -> tuple[str, ...]:
    return tuple(name for spec in SERVICES for name in spec.proto_services)


def mesh_only_methods(only: ServiceSpec | None = None) -> list[str]:
    """gRPC paths of the methods without a google.api.http rule.

    They exist for the services' own calls to each other (batch reads that
    take a viewer id on trust, for one), so the gateway refuses them; inside
    the mesh they are called on the services' own ports.
    """
    import importlib

    from google.api import annotations_pb2

    paths = []
    for spec in SERVICES if only is None else (only,):
        for module_name in spec.proto_modules:
            module = importlib.import_module(module_name)
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    if method.name in spec.gateway_grpc_methods:
                        continue
                    if not method.GetOptions().HasExtension(annotations_pb2.http):
                        paths.append(f"/{service.full_name}/{method.name}")
    return sorted(paths)
