"""How the demo model reads a prompt: plain instructions, remembered values and tool arguments.

Everything here is a fixed text rule (documented in ``docs/providers.md``), so the demo stays
deterministic while following the instructions that first-time users and conformance suites give:

* ``reply with exactly X`` / ``respond with exactly X`` / ``say exactly X`` / ``say X and nothing
  else`` / ``repeat after me: X`` -> ``X`` (quotes around X are removed);
* a question about a value stated earlier in the conversation (``what number did I give you?``,
  ``what is my name?``, ``what was the code word?``) -> that value;
* ``say X in exactly N words`` -> X in N words (padded or cut); ``count from A to B`` -> ``A, ...,
  B``; a short ``say X`` -> ``X!``;
* a system or developer prompt that asks for pirate speak -> the answer in pirate words;
* tool arguments filled from the prompt, in order: quoted strings, then capitalised names (``New
  York``) for string parameters, numbers for number parameters, a word that is one of an
  ``enum``'s values; other required parameters get a schema instance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ._schema_instance import schema_instance

__all__ = [
    "PromptValues",
    "answers_question",
    "exact_reply",
    "instructed_reply",
    "recalled_value",
    "styled",
    "tool_arguments",
]

_QUOTED: Final = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|`([^`\n]+)`|(?<!\w)\'([^\'\n]+)\'(?!\w)')
_NUMBER: Final = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\w)")
_NAME: Final = re.compile(r"\b[A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)*")
_SENTENCE_START: Final = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)$")
_EXACT: Final = (
    re.compile(
        r"\b(?:reply|respond|answer|say|output|print|write|return)\s+(?:back\s+)?"
        r"(?:with\s+)?(?:exactly|only|just|verbatim)\s*:?\s*(?P<x>.+)",
        re.I | re.S,
    ),
    re.compile(r"\brepeat\s+after\s+me\s*:?\s*(?P<x>.+)", re.I | re.S),
    re.compile(
        r"\b(?:say|reply|respond|answer|output)\s+(?:with\s+)?(?P<x>.+?)\s*,?\s+and\s+"
        r"nothing\s+else\b",
        re.I | re.S,
    ),
)
#: "my name is Ada", "the code word is 'tulip'", "remember the number 42",
#: "remember this code word: papaya", "X = 7".
_STATEMENTS: Final = (
    re.compile(
        r"\b(?:my|the|our)\s+(?P<key>[a-z][a-z ]{0,30}?)\s+(?:is|was|=)\s+(?P<v>[^.,;!?\n]+)",
        re.I,
    ),
    # "remember this code word: papaya": a key of several words ends at the colon.
    re.compile(
        r"\bremember\s+(?:the\s+|this\s+|my\s+)?(?P<key>[a-z][a-z ]{0,30}?)\s*:\s*"
        r"(?P<v>[^.,;!?\n]+)",
        re.I,
    ),
    re.compile(
        r"\bremember\s+(?:the\s+|this\s+|my\s+)?(?P<key>[a-z]+)\s*:?\s+(?P<v>[^.,;!?\n]+)", re.I
    ),
)
_CLAUSE: Final = re.compile(r"[.;!?\n]+\s*|,\s+|\s+(?:and|but|so|then)\s+", re.I)
_QUESTION: Final = re.compile(
    r"\bwhat(?:'s|\s+is|\s+was|\s+were)?\s+(?:the\s+|my\s+|our\s+)?(?P<key>[a-z][a-z ]{0,30}?)"
    r"(?:\s+(?:did|do|have)\s+(?:i|we)\b.*)?\s*\?",
    re.I,
)
#: Words of a tool's name that say nothing about what it answers (``get_weather`` -> weather).
_TOOL_WORD_NOISE: Final = frozenset(
    map(
        str.lower,
        re.findall(
            r"\w+",
            """get set fetch list find lookup look up search read write run create update delete
            make do the a an of for to by from with current tool api info data query call""",
        ),
    )
)


def _unquote(text: str) -> str:
    text = text.strip()
    match = _QUOTED.fullmatch(text)
    if match:
        return next(g for g in match.groups() if g is not None)
    # Only the first line, without a closing period.
    text = text.splitlines()[0].strip() if text else text
    return text[:-1].strip() if text.endswith(".") and not text.endswith("..") else text


def exact_reply(text: str) -> str | None:
    """``X`` when ``text`` asks for an exact reply (see the module docstring)."""
    for pattern in _EXACT:
        match = pattern.search(text)
        if match:
            value = match.group("x")
            quoted = _QUOTED.search(value)
            if quoted and quoted.start() == 0:
                return next(g for g in quoted.groups() if g is not None)
            value = _unquote(value)
            if value:
                return value
    return None


def _key(text: str) -> str:
    words = text.lower().split()
    return words[-1] if words else ""


def recalled_value(question: str, earlier: Sequence[str]) -> str | None:
    """The value an earlier turn stated, when ``question`` asks for it; else None."""
    match = _QUESTION.search(question)
    if match is None:
        return None
    wanted = _key(match.group("key"))
    if not wanted:
        return None
    for text in reversed(earlier):
        # "my number is 42 and my name is Ada": one statement per clause.
        for clause in reversed(_CLAUSE.split(text)):
            for pattern in _STATEMENTS:
                found = pattern.search(clause)
                if found is not None and _key(found.group("key")) == wanted:
                    return _unquote(found.group("v"))
        if wanted in ("number", "numbers", "digit", "value", "amount"):
            numbers = _NUMBER.findall(text)
            if numbers:
                return str(numbers[-1])
    return None


@dataclass
class PromptValues:
    """The values a prompt offers for tool arguments, each used once, in order."""

    strings: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, text: str, exclude: Sequence[str] = ()) -> PromptValues:
        values = cls()
        spans = []
        for match in _QUOTED.finditer(text):
            values.strings.append(next(g for g in match.groups() if g is not None))
            spans.append(match.span())
        bare = "".join(" " if any(a <= i < b for a, b in spans) else c for i, c in enumerate(text))
        skip = {e.lower() for e in exclude} | {"i"}
        for match in _NAME.finditer(bare):
            name = match.group(0)
            if _SENTENCE_START.search(bare[: match.start()]):
                # The first word of a sentence is capitalised anyway: keep the rest, if any.
                name = name.partition(" ")[2].strip()
            if name and name.lower() not in skip:
                values.names.append(name)
        values.numbers = _NUMBER.findall(bare)
        values.words = re.findall(r"[\w-]+", text.lower())
        return values


def _number(text: str, integer: bool) -> int | float:
    value = float(text)
    return int(value) if integer or value.is_integer() else value


def tool_arguments(parameters: Mapping[str, Any], text: str, exclude: Sequence[str] = ()) -> Any:
    """Arguments for a tool whose JSON schema is ``parameters``, filled from ``text``."""
    properties = parameters.get("properties")
    if parameters.get("type", "object") != "object" or not isinstance(properties, Mapping):
        return schema_instance(parameters)
    required = [r for r in parameters.get("required") or () if isinstance(r, str)]
    values = PromptValues.read(text, exclude)
    base = schema_instance(parameters)
    arguments: dict[str, Any] = {}
    for key, schema in properties.items():
        value = _from_prompt(schema, values) if isinstance(schema, Mapping) else None
        if value is not None:
            arguments[key] = value
        elif key in required and isinstance(base, dict) and key in base:
            arguments[key] = base[key]
    for key in required:  # required names without a property schema
        if key not in arguments and isinstance(base, dict) and key in base:
            arguments[key] = base[key]
    return arguments


def _from_prompt(schema: Mapping[str, Any], values: PromptValues) -> Any:
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        for option in enum:
            if isinstance(option, str) and option.lower() in values.words:
                return option
        return None
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared]
    if "string" in types:
        if values.strings:
            return values.strings.pop(0)
        if values.names:
            return values.names.pop(0)
        return None
    if "integer" in types or "number" in types:
        integer = "number" not in types
        for index, number in enumerate(values.numbers):
            if not integer or float(number).is_integer():
                values.numbers.pop(index)
                return _number(number, integer)
    return None


def answers_question(tool: Mapping[str, Any], text: str) -> bool:
    """True when ``text`` is a question about what the tool's name says it provides."""
    if "?" not in text:
        return False
    name = str(tool.get("name", ""))
    words = [w for w in re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", name) if w]
    topics = [w.lower() for w in words if w.lower() not in _TOOL_WORD_NOISE and len(w) > 2]
    lowered = text.lower()
    return bool(topics) and all(re.search(rf"\b{re.escape(t)}", lowered) for t in topics)


_NUMBER_WORDS: Final = {
    w: i
    for i, w in enumerate(
        re.findall(r"\w+", "zero one two three four five six seven eight nine ten")
    )
}
_IN_WORDS: Final = re.compile(
    r"\b(?:say|write|give|reply|answer|respond|greet)\b\s*(?P<x>.*?)\s*\bin\s+"
    r"(?:exactly\s+|just\s+|only\s+)?(?P<n>\d+|" + "|".join(_NUMBER_WORDS) + r")\s+words?\b",
    re.I | re.S,
)
_COUNT: Final = re.compile(
    r"\bcount\s+(?:down\s+|up\s+)?(?:from\s+(?P<a>-?\d+)\s+)?(?:to|until|up\s+to|down\s+to)\s+"
    r"(?P<b>-?\d+)\b",
    re.I,
)
_SAY: Final = re.compile(r"^\s*(?:please\s+)?say\s+(?P<x>[^.!?\n]{1,60}?)\s*[.!?]?\s*$", re.I)
_GREETINGS: Final = frozenset({"hello", "hi", "hey", "greetings", "hello world"})
#: A ``say ...`` that starts with one of these is answered with the greeting (and its addressee).
_SAY_GREETINGS: Final = frozenset({"hello", "hi", "hey", "howdy", "ahoy", "goodbye", "bye"})
#: Other ``say X`` phrases are repeated up to this many words (longer ones are echoed).
_SAY_MAX_WORDS: Final = 3
#: What "say hello in exactly N words" answers, by N (more words: filler after the longest).
_GREETING_BY_LENGTH: Final = (
    "Hello!",
    "Hello there!",
    "Hello dear friend!",
    "Hello there, dear friend!",
    "Hello there, my dear friend!",
)
#: Words that pad an answer to the number of words asked for.
_FILLER: Final = re.findall(
    r"\S+", "from the akgate demo model, with a deterministic answer for you"
)
_MAX_COUNT: Final = 100
_MAX_WORDS: Final = 50


def _words_reply(subject: str, n: int) -> str:
    """``subject`` in exactly ``n`` words: a greeting grows politely, anything else is padded
    with filler words (or cut)."""
    n = max(1, min(n, _MAX_WORDS))
    subject = subject.strip().strip("\"'“”")
    if subject.lower() in _GREETINGS or not subject:
        if n <= len(_GREETING_BY_LENGTH):
            return _GREETING_BY_LENGTH[n - 1]
        subject = _GREETING_BY_LENGTH[-1].rstrip("!")
    first = subject[:1].upper() + subject[1:]
    words = [*first.split(), *(_FILLER * (n // len(_FILLER) + 1))][:n]
    return " ".join(words).rstrip(",") + "."


def instructed_reply(text: str) -> str | None:
    """The answer to a plain instruction the demo follows (see the module docstring)."""
    match = _IN_WORDS.search(text)
    if match:
        raw = match.group("n").lower()
        n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        return _words_reply(match.group("x"), n)
    match = _COUNT.search(text)
    if match:
        start = int(match.group("a")) if match.group("a") is not None else 1
        end = int(match.group("b"))
        step = 1 if end >= start else -1
        numbers = list(range(start, end + step, step))[:_MAX_COUNT]
        return ", ".join(map(str, numbers))
    match = _SAY.match(text)
    if match:
        return _say(match.group("x").strip().strip("\"'“”"))
    return None


def _say(phrase: str) -> str | None:
    """``say hello`` -> ``Hello!``; ``say hi to Ada`` -> ``Hi, Ada!``; a short phrase -> itself."""
    words = phrase.split()
    if words and words[0].lower() in _SAY_GREETINGS:
        greeting = words[0].capitalize()
        to = re.match(r"\s*to\s+(?:the\s+)?(?P<who>.+?)(?:\s+in\s+.*)?$", " ".join(words[1:]))
        return f"{greeting}, {to.group('who')}!" if to else f"{greeting}!"
    if 0 < len(words) <= _SAY_MAX_WORDS:
        return phrase[:1].upper() + phrase[1:] + "!"
    return None


_PIRATE_ASK: Final = re.compile(r"\bpirate\b", re.I)
_PIRATE_WORDS: Final = {
    "hello": "ahoy",
    "hi": "ahoy",
    "hey": "ahoy",
    "my": "me",
    "you": "ye",
    "your": "yer",
    "friend": "matey",
    "friends": "mateys",
    "yes": "aye",
    "is": "be",
    "are": "be",
    "the": "th'",
    "there": "thar",
    "said": "spake",
}


def _pirate_word(match: re.Match[str]) -> str:
    word = match.group(0)
    swap = _PIRATE_WORDS.get(word.lower())
    if swap is None:
        return word
    return swap[:1].upper() + swap[1:] if word[:1].isupper() else swap


def styled(text: str, system: str) -> str:
    """``text`` in the style the system/developer prompt ``system`` asks for (pirate speak)."""
    if not _PIRATE_ASK.search(system):
        return text
    # What is quoted (the user's own words) stays as said.
    pieces = text.split('"')
    for index in range(0, len(pieces), 2):
        pieces[index] = re.sub(r"[A-Za-z]+", _pirate_word, pieces[index])
    return "Arr! " + '"'.join(pieces)
