"""Feed settings (PICTOR_FEED_*)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import env_int, env_str


@dataclass(frozen=True)
class FeedConfig:
    # Pushed posts kept per feed.
    max_items: int = 800
    # Authors with at least this many followers are pulled at read time, not pushed.
    celebrity_threshold: int = 10_000
    # A feed not read for this long expires; its user counts as inactive (no
    # pushes) and gets a rebuild on return.
    active_days: int = 7
    # Ranked pages rank within windows of this many candidates.
    ranked_window: int = 100
    # How old the features a page ranks with may be: posts' like and comment counts, the viewer's
    # affinities (read from Redis at most this often per post, viewer and author, and feed process:
    # services.feed.features.RecentFeatures); 0 reads them every page.
    features_cache_s: int = 10
    # The user classes (realtime's classifier) whose feeds take pushes. Anyone else's feed is
    # dropped when a followed author posts, and pulled whole (rebuilt) when they next open it.
    push_classes: frozenset[str] = frozenset({"LIVE", "ACTIVE"})

    @property
    def ttl_s(self) -> int:
        return self.active_days * 86_400

    @classmethod
    def from_env(cls) -> FeedConfig:
        return cls(
            max_items=env_int("PICTOR_FEED_MAX_ITEMS", cls.max_items),
            celebrity_threshold=env_int("PICTOR_FEED_CELEBRITY_THRESHOLD", cls.celebrity_threshold),
            active_days=env_int("PICTOR_FEED_ACTIVE_DAYS", cls.active_days),
            ranked_window=env_int("PICTOR_FEED_RANKED_WINDOW", cls.ranked_window),
            features_cache_s=env_int("PICTOR_FEED_FEATURES_CACHE_S", cls.features_cache_s),
            push_classes=frozenset(c.strip().upper() for c in env_str(
                "PICTOR_FEED_PUSH_CLASSES", ",".join(sorted(cls.push_classes))).split(",") if c.strip()),
        )
