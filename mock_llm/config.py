"""The mock's settings, checked once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from mock_llm.faults import DEFAULT_KINDS, FaultConfig
from mock_llm.limits import LimitConfig
from mock_llm.profiles import get_profile

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PROFILE = "article"
# Slower than this is no benchmark: at 1000 the article's 2 s call takes 33 minutes. An unbounded scale let
# 1e308 through, and every delay then overflowed or never ended.
MAX_TIME_SCALE = 1000.0


@dataclass(frozen=True, kw_only=True)
class MockConfig:
    host: str = DEFAULT_HOST
    port: int = 8100
    profile: str = DEFAULT_PROFILE
    time_scale: float = 1.0
    seed: int = 0
    error_rate: float = 0.0
    errors: tuple[str, ...] = DEFAULT_KINDS
    api_key: str | None = None
    limits: LimitConfig = field(default_factory=LimitConfig)

    def __post_init__(self) -> None:
        try:
            get_profile(self.profile)  # a replay file is read here, so a bad one fails at start-up
        except ValueError as exc:
            raise ValueError(f"profile: {exc}") from None
        if not 0.0 <= self.time_scale <= MAX_TIME_SCALE:
            raise ValueError(f"time_scale: must be between 0 and {MAX_TIME_SCALE:g}, got {self.time_scale}")
        if self.limits.per_minute() and self.time_scale == 0:
            raise ValueError("limits: --rpm, --input-tpm and --output-tpm need a time scale above 0")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: must be between 0 and 65535, got {self.port}")
        FaultConfig(error_rate=self.error_rate, kinds=self.errors)  # raises naming the bad value

    @property
    def faults(self) -> FaultConfig:
        return FaultConfig(error_rate=self.error_rate, kinds=self.errors)
