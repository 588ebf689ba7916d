"""Taxonomy: the one YAML format shared by theme detection, jobs, the API and alerts.

Themes can be added, renamed, merged and retired; `aliases` and `history` keep old ids
resolvable so stored mentions and alert routes survive a change.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nlp.errors import VerbatimError, unknown_names
from nlp.text.validity import non_text

# --- patterns: linear-time engine for anything a user wrote ---------------------------------


class PatternMatch(Protocol):
    def start(self) -> int: ...
    def end(self) -> int: ...


class CompiledPattern(Protocol):
    def finditer(self, text: str) -> Iterator[Any]: ...


@functools.cache
def _fold_table() -> dict[int, str]:
    """Accented Latin letters -> their base letter, typographic apostrophes -> "'", one
    character for one (offsets stay): « l’emballage » typed in a pattern matched no text, as
    the rules match texts with "'"."""
    table: dict[int, str] = {cp: "'" for cp in (0x2019, 0x2018, 0x02BC)}
    for cp in range(0xC0, 0x250):
        base = unicodedata.normalize("NFD", chr(cp))[0]
        if base.isascii() and base.isalpha():
            table[cp] = base
    return table


@functools.lru_cache(maxsize=8)
def fold_same_length(text: str) -> str:
    # Memoised: every user pattern of a taxonomy folds the same text in turn.
    return text.translate(_fold_table())


_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def _strict_loader(base: Any) -> Any:
    """`base` (a safe loader) that refuses a key given twice in one mapping (YAML keeps the
    last one: a second `seeds:` silently dropped the first list) and reads unquoted dates as
    text (`2024-02-30` as a seed or a history date was a ValueError traceback, not an error
    naming the field; pydantic parses the dates a taxonomy holds)."""

    class Loader(base):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"key {key_node.value!r} given twice in one mapping (the second "
                            "would silently replace the first)",
                            key_node.start_mark,
                        )
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    Loader.yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != _TIMESTAMP]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return Loader


_FAST_LOADER = _strict_loader(yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else None
_SAFE_LOADER = _strict_loader(yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """yaml.safe_load with libyaml's parser when PyYAML has it (same documents, ~10x faster:
    taxonomies are read at every start); a document it refuses is read again by the pure
    Python parser, so errors are reported as they always were."""
    if _FAST_LOADER is not None:
        try:
            return yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            pass
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


@functools.cache
def packaged_patterns() -> frozenset[str]:
    """Regexes shipped in the packaged taxonomies: reviewed with the code, so they may use
    Python `re` features (lookarounds). Package data, read once."""
    found: set[str] = set()
    folder = resources.files("nlp.resources.taxonomies")
    for name in BUILTIN_TAXONOMIES:
        data = load_yaml(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8"))
        found.update(data.get("positive_cues", []) + data.get("negative_cues", []))
        for theme in data.get("themes", []):
            for key in ("patterns", "positive_cues", "negative_cues"):
                found.update(theme.get(key, []))
    return frozenset(found)


class LinearPattern:
    """A user pattern run by RE2 (linear time, no catastrophic backtracking), case-insensitive.

    RE2's `\\b` and `\\w` are ASCII: both the pattern and the text are matched with accents
    folded one character for one ("abîmé" -> "abime"), so `\\bab[îi]m[ée]\\b` still ends at
    a word boundary and match offsets index the original text."""

    engine = "re2"

    def __init__(self, pattern: str) -> None:
        import re2

        self.pattern = pattern
        options = re2.Options()
        options.case_sensitive = False
        options.log_errors = False  # the error is raised, not printed by the C++ library
        try:
            self._compiled = re2.compile(fold_same_length(pattern), options)
        except re2.error as exc:
            detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            raise ValueError(
                f"bad pattern {pattern!r}: not a linear-time (RE2) regex ({detail}); "
                "lookarounds and backreferences are not supported"
            ) from None

    def finditer(self, text: str) -> Iterator[Any]:
        return self._compiled.finditer(fold_same_length(text))


def compile_pattern(pattern: str) -> CompiledPattern:
    """Compile a taxonomy regex: packaged ones with Python `re`, any other with RE2.

    Raises ValueError (naming the pattern) when it cannot be compiled."""
    if pattern in packaged_patterns():
        try:
            return re.compile(pattern, re.IGNORECASE)
        except re.error as exc:  # pragma: no cover - packaged files are tested
            raise ValueError(f"bad pattern {pattern!r}: {exc}") from exc
    if len(pattern) > 1000:
        raise ValueError(f"pattern of {len(pattern)} characters refused (at most 1000)")
    return LinearPattern(pattern)


# What one taxonomy may hold: each user regex scans every analysed text, so their number
# bounds the work of one request (RE2 keeps each scan linear; this keeps their sum bounded).
MAX_THEMES = 200
MAX_USER_PATTERNS = 1000  # patterns and cues not shipped with Verbatim, all themes together


@functools.lru_cache(maxsize=4096)
def _checked(pattern: str) -> None:
    compile_pattern(pattern)  # a refused pattern raises, and is not cached


_PROBE = "Colis abîmé, livré en 3 jours !"


@functools.lru_cache(maxsize=4096)
def _matches_empty(pattern: str) -> bool:
    """ "", "a*", "\\b" or "retard|" match an empty string: at every position, or at every
    word boundary, where they use up the rules' matches per text with nothing found."""
    compiled = compile_pattern(pattern)
    return any(m.start() == m.end() for text in ("", _PROBE) for m in compiled.finditer(text))


def _refuse_empty_matches(patterns: list[str]) -> None:
    for pattern in patterns:
        if _matches_empty(pattern):
            raise ValueError(
                f"bad pattern {pattern!r}: it can match an empty string (no word found), "
                "e.g. with '*', '?', '|' at an end or '\\b' alone"
            )


def _new_input(info: ValidationInfo) -> bool:
    """Checks added after a taxonomy could be stored are made on what users write, never on
    versions already in the database (`parse_taxonomy(..., stored=True)`): those must stay
    readable after an upgrade."""
    return not (isinstance(info.context, dict) and info.context.get("stored"))


def _check_patterns(patterns: list[str]) -> list[str]:
    # Memoised: each edit of a taxonomy validates all its patterns again (a list of 200
    # operations on a taxonomy of 1000 patterns would compile 200,000 regexes).
    for pattern in patterns:
        _checked(pattern)
    return patterns


Stage = Literal["pre-purchase", "purchase", "delivery", "after-sales", "experience"]

# Taxonomy strings stored in bounded database columns (core/models.py): a longer one is
# refused here, where the taxonomy is read, not by PostgreSQL at the next re-detection.
MAX_ID_CHARS = 64  # theme_mentions.theme, alerts.theme, incidents.theme, daily_*.theme
MAX_TEAM_CHARS = 64  # alerts.team, incidents.team, alert_outbox.route
MAX_NAME_CHARS = 100  # taxonomy_versions.name
MAX_LABEL_CHARS = 200  # shown in every /themes answer, export, chart and Slack message

# Common names for a field, beyond what difflib finds close ("keywords" -> "seeds").
_SYNONYMS = {
    "keywords": "seeds",
    "keyword": "seeds",
    "words": "seeds",
    "regex": "patterns",
    "regexes": "patterns",
    "regexps": "patterns",
    "threshold": "alerts",
    "thresholds": "alerts",
    "alert": "alerts",
    "owner": "team",
    "name": "label",
}


def _unknown_keys(data: Any, known: Any, where: str) -> None:
    """Raise ValueError naming every key of `data` that is not a field (a typo such as `seed`
    or `patern` would otherwise be ignored: a theme that never matches), with the close one."""
    if not isinstance(data, dict):
        return  # a model instance (edits) or a type error pydantic reports itself
    parts = unknown_names(data, known, _SYNONYMS)
    if parts:
        raise ValueError(
            (f"{where}: " if where else "")
            + f"unknown key {', '.join(parts)}; the keys are {', '.join(sorted(known))}"
        )


def _nfc(value: Any) -> Any:
    """Every string of a taxonomy in NFC, as the analyzer prepares texts: a seed, pattern or
    alarm term typed decomposed ("e" + U+0301, macOS, some copy-pastes) never matched."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)  # lone surrogates pass: `non_text` refuses them
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    if isinstance(value, dict):
        return {k: _nfc(v) for k, v in value.items()}
    return value


class _Strict(BaseModel):
    """Unknown keys are an error at every level of a taxonomy, named with the intended one."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def _where(cls, data: dict[Any, Any]) -> str:
        return ""  # the error's location says where (`themes[0].alerts`, `history[1]`)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _unknown_keys(data, cls.model_fields, cls._where(data))
            data = _nfc(data)
        return data


# Per-theme alert settings: (smallest, largest, what the number counts). alpha is apart.
ALERT_BOUNDS: dict[str, tuple[int, int, str]] = {
    "min_volume": (0, 1_000_000, "mentions of the theme in a day needed for an alert"),
    "min_negatives": (0, 1_000_000, "negative mentions in a day needed for a negativity alert"),
    "cooldown_days": (0, 365, "quiet days after an episode before a new one may start"),
}


class AlertThresholds(_Strict):
    """Per-theme overrides for the spike detector (None: detector defaults, nlp/spikes.py)."""

    min_volume: int | None = None
    min_negatives: int | None = None
    alpha: float | None = None  # false-discovery level of the day's tests (default 3e-4)
    cooldown_days: int | None = None
    enabled: bool = True

    @field_validator("min_volume", "min_negatives", "cooldown_days")
    @classmethod
    def _count_in_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        name = info.field_name or ""
        low, high, what = ALERT_BOUNDS[name]
        if value is not None and not low <= value <= high:
            raise ValueError(f"{value} is out of range for {name}: {what}, {low} to {high}")
        return value

    @field_validator("alpha")
    @classmethod
    def _alpha_is_a_probability(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value < 1.0:  # also refuses NaN
            raise ValueError(
                f"{value} is out of range for alpha: the false-alarm probability of the "
                "theme's tests, strictly between 0 and 1 (the detector's default is 0.0003)"
            )
        return value


class Theme(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    description: str = ""
    team: str = "default"
    stage: Stage = "experience"
    severity_weight: float = Field(default=1.0, ge=0.0, le=5.0)
    seeds: list[str] = Field(default_factory=list)  # words/phrases, matched on lemmas
    patterns: list[str] = Field(default_factory=list)  # regexes on normalised text
    examples: list[str] = Field(default_factory=list)  # short French examples of the theme
    # Regexes whose match makes its clause positive / negative *about this theme* ("délai
    # respecté" for livraison, "plante" for site_appli): opinions a general lexicon misses.
    positive_cues: list[str] = Field(default_factory=list)
    negative_cues: list[str] = Field(default_factory=list)
    alarm_terms: list[str] = Field(default_factory=list)
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)
    aliases: list[str] = Field(default_factory=list)  # former ids that now resolve here
    retired: bool = False

    @classmethod
    def _where(cls, data: dict[Any, Any]) -> str:
        theme_id = data.get("id")
        return f"theme {theme_id!r}" if isinstance(theme_id, str) else "theme"

    # Wherever a taxonomy comes from (YAML, API, database), its regexes are checked here.
    @field_validator("patterns", "positive_cues", "negative_cues")
    @classmethod
    def _patterns_ok(cls, patterns: list[str], info: ValidationInfo) -> list[str]:
        _check_patterns(patterns)
        if _new_input(info):
            _refuse_empty_matches(patterns)
        return patterns

    @field_validator("id")
    @classmethod
    def _id_fits(cls, value: str) -> str:
        if len(value) > MAX_ID_CHARS:
            raise ValueError(
                f"theme id of {len(value)} characters: at most {MAX_ID_CHARS} "
                "(it is stored with every mention and alert)"
            )
        return value

    @field_validator("team")
    @classmethod
    def _team_fits(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("team is empty: name a team, or leave the key out for 'default'")
        if len(value) > MAX_TEAM_CHARS:
            raise ValueError(
                f"team name of {len(value)} characters: at most {MAX_TEAM_CHARS} "
                "(it is stored with every alert)"
            )
        return value

    @field_validator("label")
    @classmethod
    def _label_not_empty(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("label is empty: it is the theme's name in alerts and dashboards")
        if len(value) > MAX_LABEL_CHARS and _new_input(info):
            raise ValueError(
                f"label of {len(value)} characters: at most {MAX_LABEL_CHARS} (it is the "
                "theme's name in alerts, exports and dashboards)"
            )
        return value


def _changed(theme: Theme, **update: Any) -> Theme:
    """`theme` with `update`, validated as the loader validates a theme: `model_copy` alone
    skips the checks, so a rename to a blank label or a bad id was stored and every later
    read of that version failed. Checks added since a theme was stored apply to what this
    edit changes, not to the fields it keeps (renaming a theme stored with a pattern that a
    newer check refuses was refused over that pattern)."""
    changed = Theme.model_validate({**theme.model_dump(), **update}, context={"stored": True})
    Theme.model_validate({"id": changed.id, "label": "x", **update})  # the edit: new input
    return changed


class HistoryEntry(_Strict):
    action: Literal["add", "rename", "merge", "retire", "update"]
    theme: str
    target: str | None = None
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Taxonomy(_Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    language: str = "fr"
    version: int = 1
    alarm_terms: list[str] = Field(default_factory=list)  # apply to every theme
    positive_cues: list[str] = Field(default_factory=list)  # idioms, for every theme
    negative_cues: list[str] = Field(default_factory=list)
    themes: list[Theme]
    history: list[HistoryEntry] = Field(default_factory=list)

    @classmethod
    def _where(cls, data: dict[Any, Any]) -> str:
        return "taxonomy"

    @field_validator("positive_cues", "negative_cues")
    @classmethod
    def _cues_ok(cls, patterns: list[str], info: ValidationInfo) -> list[str]:
        _check_patterns(patterns)
        if _new_input(info):
            _refuse_empty_matches(patterns)
        return patterns

    @field_validator("themes")
    @classmethod
    def _unique_ids(cls, themes: list[Theme]) -> list[Theme]:
        seen: dict[str, int] = {}
        for i, theme in enumerate(themes):
            for key in (theme.id, *theme.aliases):
                if key in seen:
                    where = f"themes[{seen[key]}] and " if seen[key] != i else ""
                    where += f"themes[{i}]"
                    raise ValueError(f"theme id or alias {key!r} is used twice ({where})")
                seen[key] = i
        return themes

    @model_validator(mode="before")
    @classmethod
    def _only_text(cls, data: Any) -> Any:
        problem = non_text(data)
        if problem:
            raise ValueError(problem[1])
        return data

    @model_validator(mode="after")
    def _has_active_theme(self) -> Taxonomy:
        if not self.active:
            raise ValueError("a taxonomy needs at least one theme that is not retired")
        return self

    @model_validator(mode="after")
    def _bounded(self) -> Taxonomy:
        if len(self.themes) > MAX_THEMES:
            raise ValueError(f"{len(self.themes)} themes: a taxonomy holds at most {MAX_THEMES}")
        shipped = packaged_patterns()
        written = [
            p
            for group in (
                self.positive_cues,
                self.negative_cues,
                *(
                    getattr(theme, key)
                    for theme in self.themes
                    for key in ("patterns", "positive_cues", "negative_cues")
                ),
            )
            for p in group
            if p not in shipped
        ]
        if len(written) > MAX_USER_PATTERNS:
            raise ValueError(
                f"{len(written)} regex patterns and cues of your own: a taxonomy holds at most "
                f"{MAX_USER_PATTERNS} (each one scans every text; seeds are matched on words "
                "in one pass and are not limited)"
            )
        return self

    @property
    def active(self) -> list[Theme]:
        return [t for t in self.themes if not t.retired]

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.active]

    def resolve(self, theme_id: str) -> Theme | None:
        """The current theme for an id or any former id (rename/merge aliases)."""
        for theme in self.themes:
            if theme_id == theme.id or theme_id in theme.aliases:
                return theme
        return None

    def current_id(self, theme_id: str) -> str:
        """The current id of a stored id (a renamed or merged theme's former id); an id the
        taxonomy does not know (a topic, a removed theme) is returned as it is."""
        theme = self.resolve(theme_id)
        return theme.id if theme is not None else theme_id

    def get(self, theme_id: str) -> Theme:
        theme = self.resolve(theme_id)
        if theme is None:
            raise KeyError(f"unknown theme {theme_id!r}; known: {', '.join(self.ids)}")
        return theme

    # --- editing: each returns a new Taxonomy, history appended ---------------------------
    def _edited(self, themes: list[Theme], entry: HistoryEntry) -> Taxonomy:
        return Taxonomy(
            name=self.name,
            language=self.language,
            version=self.version + 1,
            alarm_terms=self.alarm_terms,
            positive_cues=self.positive_cues,
            negative_cues=self.negative_cues,
            themes=themes,
            history=[*self.history, entry],
        )

    def add(self, theme: Theme) -> Taxonomy:
        """Add a theme. Its id may be a retired theme's (re-added: the new definition replaces
        it, former ids kept) or a former id of another theme (un-merge: the id leaves that
        theme's aliases, so its stored mentions are this theme's again)."""
        existing = self.resolve(theme.id)
        if existing is None:
            themes = [*self.themes, theme]
        elif existing.id == theme.id and existing.retired:
            aliases = [*existing.aliases, *(a for a in theme.aliases if a not in existing.aliases)]
            back = _changed(theme, aliases=aliases, retired=False)
            themes = [back if t.id == existing.id else t for t in self.themes]
        elif existing.id == theme.id:
            raise ValueError(f"theme {theme.id!r} already exists")
        else:
            freed = _changed(existing, aliases=[a for a in existing.aliases if a != theme.id])
            themes = [freed if t.id == existing.id else t for t in self.themes]
            themes.append(theme)
        return self._edited(themes, HistoryEntry(action="add", theme=theme.id))

    def rename(self, old_id: str, new_id: str, label: str | None = None) -> Taxonomy:
        """Rename a theme (its former id becomes an alias). Renaming back to one of its own
        former ids is allowed; another theme's id or former id is not."""
        theme = self.get(old_id)
        other = self.resolve(new_id)
        if other is not None and other.id != theme.id:
            if other.id == new_id:
                raise ValueError(f"theme {new_id!r} already exists")
            raise ValueError(
                f"{new_id!r} is a former id of theme {other.id!r} (renamed or merged: its "
                f"stored mentions and alerts count for {other.id!r}); choose another id"
            )
        if new_id == theme.id:
            raise ValueError(f"theme {new_id!r} already has this id")
        renamed = _changed(
            theme,
            id=new_id,
            aliases=[*(a for a in theme.aliases if a != new_id), theme.id],
            **({"label": label} if label else {}),
        )
        themes = [renamed if t.id == theme.id else t for t in self.themes]
        return self._edited(themes, HistoryEntry(action="rename", theme=theme.id, target=new_id))

    def merge(self, source_id: str, target_id: str) -> Taxonomy:
        source, target = self.get(source_id), self.get(target_id)
        if source.id == target.id:
            raise ValueError("cannot merge a theme into itself")
        if target.retired:
            raise ValueError(
                f"cannot merge into {target.id!r}: it is retired (the merged theme's mentions "
                "would be hidden); add it again first, or merge into an active theme"
            )
        merged = _changed(
            target,
            aliases=[*target.aliases, source.id, *source.aliases],
            seeds=sorted({*target.seeds, *source.seeds}),
            patterns=_union(target.patterns, source.patterns),
            examples=_union(target.examples, source.examples),
            positive_cues=_union(target.positive_cues, source.positive_cues),
            negative_cues=_union(target.negative_cues, source.negative_cues),
        )
        themes = [merged if t.id == target.id else t for t in self.themes if t.id != source.id]
        return self._edited(themes, HistoryEntry(action="merge", theme=source.id, target=target.id))

    def retire(self, theme_id: str) -> Taxonomy:
        theme = self.get(theme_id)
        themes = [
            t.model_copy(update={"retired": True}) if t.id == theme.id else t for t in self.themes
        ]
        return self._edited(themes, HistoryEntry(action="retire", theme=theme.id))

    def replaced_by(self, document: Taxonomy) -> Taxonomy:
        """`document` as the next version (a full replacement: API document, YAML import).
        History is kept: this taxonomy's entries, then the document's that it lacks (a
        document from another database), then one `update` entry."""
        known = {(h.action, h.theme, h.target, h.at) for h in self.history}
        extra = [h for h in document.history if (h.action, h.theme, h.target, h.at) not in known]
        return document.model_copy(
            update={
                "version": self.version + 1,
                "themes": self._kept_ids(document),
                "history": [*self.history, *extra, HistoryEntry(action="update", theme="*")],
            }
        )

    def _kept_ids(self, document: Taxonomy) -> list[Theme]:
        """The document's themes, where a theme it drops under an id it has again under a
        former id (an export from before a rename, imported to roll back) keeps its ids as
        aliases of that theme: its stored mentions, alerts and incidents stayed under the
        dropped id and counted for a removed theme."""
        themes = list(document.themes)
        for theme in self.themes:
            if document.resolve(theme.id) is not None:
                continue
            homes = [a for a in theme.aliases if any(t.id == a for t in themes)]
            renamed = [
                h.theme
                for h in reversed(self.history)
                if h.action == "rename" and h.target == theme.id and h.theme in homes
            ]
            home = renamed[0] if renamed else homes[0] if len(homes) == 1 else None
            if home is None:
                continue  # removed, or several former ids back: which one it was is unknown
            i = next(i for i, t in enumerate(themes) if t.id == home)
            taken = {a for t in themes for a in (t.id, *t.aliases)}
            kept = [a for a in (theme.id, *theme.aliases) if a not in taken]
            themes[i] = themes[i].model_copy(update={"aliases": [*themes[i].aliases, *kept]})
        return themes

    def same_content(self, other: Taxonomy) -> bool:
        """True when both define the same taxonomy (version and history aside): storing
        `other` over this one would change nothing."""
        skip = {"version", "history"}
        return self.model_dump(exclude=skip) == other.model_dump(exclude=skip)

    # --- files --------------------------------------------------------------------------
    def to_yaml(self) -> str:
        # libyaml's emitter when PyYAML has it: every stored version is written as YAML, and
        # the pure Python one took 0.2 s for a taxonomy near the limits (read back the same).
        return yaml.dump(
            self.model_dump(mode="json", exclude_defaults=False),
            Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
            allow_unicode=True,
            sort_keys=False,
        )

    def save(self, path: Path) -> None:
        path.write_text(self.to_yaml(), encoding="utf-8")


def _union(first: list[str], second: list[str]) -> list[str]:
    """`first` then the items of `second` it lacks (a merge does not repeat a pattern)."""
    return [*first, *(x for x in second if x not in first)]


class TaxonomyError(VerbatimError, ValueError):
    """A taxonomy file that cannot be read or does not validate (message names the field)."""


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc` (pydantic's error location: keys and list
    indices), or of its deepest ancestor found; None for the document itself."""
    node, found = root, None
    for part in loc:
        mark = None
        if isinstance(node, yaml.MappingNode):
            pair = next((kv for kv in node.value if getattr(kv[0], "value", None) == part), None)
            # The key's line: a list's own starts at its first item, after the `themes:` line.
            node, mark = (pair[1], pair[0].start_mark) if pair is not None else (None, None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
            mark = node.start_mark if node is not None else None
        else:
            node = None
        if node is None or mark is None:
            break
        found = mark.line + 1
    return found


def describe_errors(
    exc: ValidationError, data: Any = None, limit: int = 5, text: str | None = None
) -> str:
    """One line per problem, `themes[2].alerts.alpha (theme 'livraison'): message`, without
    pydantic's input echo and documentation links (the CLI prints it on one line). `text`:
    the YAML document `data` was read from; each problem then starts with its line there
    (`line 172: themes[2]...`): in an export of hundreds of lines, counting list items to
    find `themes[5].seeds[12]` was the user's job."""
    root = None
    if text is not None:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)  # only on this error path
        except yaml.YAMLError:  # pragma: no cover - the document was read before
            root = None
    lines = []
    for err in exc.errors()[:limit]:
        loc = err.get("loc", ())
        where = ""
        for part in loc:
            where += f"[{part}]" if isinstance(part, int) else f".{part}"
        where = where.lstrip(".")
        if len(loc) >= 2 and loc[0] == "themes" and isinstance(loc[1], int):
            themes = data.get("themes") if isinstance(data, dict) else None
            theme = themes[loc[1]] if isinstance(themes, list) and loc[1] < len(themes) else None
            theme_id = theme.get("id") if isinstance(theme, dict) else None
            if isinstance(theme_id, str) and len(loc) > 2 and len(theme_id) <= MAX_ID_CHARS:
                where += f" (theme {theme_id!r})"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        line = _line_of(root, tuple(loc)) if root is not None else None
        lines.append((f"line {line}: " if line else "") + (f"{where}: {msg}" if where else msg))
    more = exc.error_count() - limit
    if more > 0:
        lines.append(f"and {more} more problem(s)")
    return "; ".join(lines)


def shares_a_container(data: Any) -> bool:
    """True when one list or mapping is reached twice: a YAML alias (`*name`) to a collection.

    PyYAML builds an alias as a reference, so nine nested aliases of nine items each parse
    into a few hundred bytes but validate as 9**8 items (the "billion laughs"): a 1 KB
    taxonomy then held the CLI, or an API worker, for minutes. The walk visits each
    distinct container once."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if id(node) in seen:
            return True
        seen.add(id(node))
        stack.extend(node.values() if isinstance(node, dict) else node)
    return False


def parse_taxonomy(text: str, origin: str = "<string>", *, stored: bool = False) -> Taxonomy:
    """A taxonomy from YAML text; `stored`: a version read back from the database (checks
    added since it was written are not made again, see _new_input)."""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # a constructor's own errors too
        raise TaxonomyError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TaxonomyError(f"{origin}: expected a mapping with 'name' and 'themes'")
    if shares_a_container(data):
        raise TaxonomyError(
            f"{origin}: YAML aliases of lists or mappings (`&name` … `*name`) are not accepted "
            "in a taxonomy: write each theme and list out"
        )
    try:
        return Taxonomy.model_validate(data, context={"stored": stored})
    except ValidationError as exc:
        raise TaxonomyError(f"{origin}: {describe_errors(exc, data, text=text)}") from exc
    except ValueError as exc:
        raise TaxonomyError(f"{origin}: {exc}") from exc


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """Load a taxonomy file; None or a packaged name ("ecommerce", "restaurant") loads a default."""
    if path is None or str(path) in BUILTIN_TAXONOMIES:
        name = "ecommerce" if path is None else str(path)
        text = (
            resources.files("nlp.resources.taxonomies")
            .joinpath(f"{name}.yaml")
            .read_text(encoding="utf-8")
        )
        return parse_taxonomy(text, origin=f"builtin:{name}")
    file = Path(path)
    if not file.exists():
        raise TaxonomyError(f"taxonomy file not found: {file}")
    try:
        text = file.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is fine
    except UnicodeDecodeError as exc:  # a Windows-1252 save was a traceback
        raise TaxonomyError(
            f"{file}: not UTF-8 text (byte {exc.start}): save it as UTF-8 and try again"
        ) from None
    except OSError as exc:
        raise TaxonomyError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    return parse_taxonomy(text, origin=str(file))


BUILTIN_TAXONOMIES = ("ecommerce", "restaurant")
