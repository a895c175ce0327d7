"""Typed settings, read once from the environment (and a local .env file)."""
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=ROOT / ".env", extra="ignore")

    database_url: str = f"sqlite:///{ROOT / 'data' / 'crm.db'}"
    # Demo mode shows the demo logins on the login page; `python -m crm demo` turns it on.
    demo_mode: bool = False
    idle_timeout_minutes: int = 30
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    sqlite_busy_timeout_ms: int = 60_000
    models_dir: Path = ROOT / "data" / "models"


@lru_cache
def get_settings() -> Settings:
    return Settings()
