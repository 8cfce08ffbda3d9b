"""Realtime settings (PICTOR_REALTIME_*, PICTOR_CLASSIFIER_*)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import env_float, env_int


@dataclass(frozen=True)
class RealtimeConfig:
    # Events kept per user for resuming (at least; Redis trims in whole nodes).
    replay_events: int = 1000
    # A buffer nobody wrote to for this long goes.
    replay_ttl_s: int = 7 * 86_400
    # Between heartbeats on an otherwise quiet stream.
    heartbeat_ms: int = 15_000
    # A stream ticket's life.
    ticket_ttl_s: int = 60
    # An open stream without activity for this long is IDLE.
    idle_ms: int = 300_000
    # How often the dispatch worker looks for streams gone idle or lost with their replica.
    presence_sweep_ms: int = 5_000
    # Streams of one process being set up (or closed) at once; the rest wait their turn.
    setup_concurrency: int = 32

    @property
    def conn_ttl_ms(self) -> int:
        """An open stream is refreshed every heartbeat; one not refreshed for three is gone (its replica died)."""
        return 3 * self.heartbeat_ms

    @classmethod
    def from_env(cls) -> RealtimeConfig:
        return cls(
            replay_events=env_int("PICTOR_REALTIME_REPLAY_EVENTS", cls.replay_events),
            replay_ttl_s=env_int("PICTOR_REALTIME_REPLAY_TTL", cls.replay_ttl_s),
            heartbeat_ms=env_int("PICTOR_REALTIME_HEARTBEAT_MS", cls.heartbeat_ms),
            ticket_ttl_s=env_int("PICTOR_REALTIME_TICKET_TTL", cls.ticket_ttl_s),
            idle_ms=env_int("PICTOR_REALTIME_IDLE_MS", cls.idle_ms),
            presence_sweep_ms=env_int("PICTOR_REALTIME_PRESENCE_SWEEP_MS", cls.presence_sweep_ms),
            setup_concurrency=env_int("PICTOR_REALTIME_SETUP_CONCURRENCY", cls.setup_concurrency),
        )


@dataclass(frozen=True)
class ClassifierConfig:
    # Acted within this many days (fractions allowed, for tests): ACTIVE.
    active_days: float = 7
    # Neither visited nor acted for this many days: INACTIVE.
    inactive_days: float = 30
    # At or over this many followers: POPULAR (the feed's own threshold, so both agree).
    celebrity_threshold: int = 10_000
    # How often labels are recomputed for users whom time moved across a boundary.
    sweep_ms: int = 60_000

    @classmethod
    def from_env(cls) -> ClassifierConfig:
        return cls(
            active_days=env_float("PICTOR_CLASSIFIER_ACTIVE_DAYS", cls.active_days),
            inactive_days=env_float("PICTOR_CLASSIFIER_INACTIVE_DAYS", cls.inactive_days),
            celebrity_threshold=env_int("PICTOR_FEED_CELEBRITY_THRESHOLD", cls.celebrity_threshold),
            sweep_ms=env_int("PICTOR_CLASSIFIER_SWEEP_MS", cls.sweep_ms),
        )
