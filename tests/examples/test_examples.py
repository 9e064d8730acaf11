"""``examples/`` stays true: the sample config shows the defaults, the sample data loads."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from routr.models import KINDS, PLURALS, load_manifest
from routr.models.config import Config, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_sample_config_sets_every_key_to_its_default() -> None:
    sample = load_config(EXAMPLES / "config.yml", {})
    defaults = load_config(None, {})
    skip = {"data_source"}  # its path is resolved against the file's folder
    assert sample.spec.model_dump(exclude=skip) == defaults.spec.model_dump(exclude=skip)
    assert sample.metadata == defaults.metadata
    assert sample.spec.data_source.provider == defaults.spec.data_source.provider


def test_sample_config_names_every_key_the_model_knows() -> None:
    # Keys without a default (externAddr, certFile...) may be shown commented out.
    text = (EXAMPLES / "config.yml").read_text()
    missing = sorted(k for k in _model_keys(Config) if f"{k.rsplit('.', 1)[-1]}:" not in text)
    assert not missing, f"examples/config.yml does not show {missing}"


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        out.add(key)
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                out |= _model_keys(candidate, key + ".")
    return out


def test_sample_resources_load() -> None:
    data = EXAMPLES / "config"
    for kind in KINDS:
        path = data / f"{PLURALS[kind]}.yml"
        if path.exists():
            assert load_manifest(path.read_text(), str(path), kind)


def test_the_events_page_names_every_event() -> None:
    from routr.events.types import EVENT_TYPES

    page = (EXAMPLES.parent / "docs" / "events.md").read_text()
    missing = [name for name in EVENT_TYPES if f"routr.{name}" not in page]
    assert not missing, f"docs/events.md does not describe {missing}"
