"""Grader specs: one pydantic model per grader type, each field declared once, and the union of them.

``parse_spec(dict)`` validates a spec dict -- a config's ``grader:``, a data row's ``grader``, ``rft
grade --grader`` -- into :data:`GraderSpec` (a union on ``type``); every problem is one
:class:`SpecError` shaped ``"<type> grader: field '<x>' = <value>: <problem>; <fix>"``, made from
pydantic's error by :func:`spec_error` alone. Rules that need no IO are validators here: a template's
placeholders, a regex RE2 compiles, a JSON Schema, a formula (the three little languages are parsed by
:mod:`rft.config.grader_syntax`), exactly one of two fields, weights that name the sub-graders. OpenAI RFT
grader JSON loads as-is: ``name`` and ``image_tag`` are accepted and ignored where OpenAI sends them.
``rft config --graders`` prints every field from these models.

Not covered: checks that need IO or run code -- a python grader's ``source``/``file``/``function``, an
sql ``database`` file, the code grader's sandbox -- which the graders make when built
(``rft.graders.build``). Importing this loads pydantic only (RE2 and jsonschema load inside the
validators that use them), so ``import rft.config`` stays cheap.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from rft.config.grader_errors import spec_error
from rft.config.grader_syntax import FUNCTIONS, Formula, compile_re2, template_paths
from rft.config.judges import JudgeMessage, JudgeSampling, JudgeSpec


class Spec(BaseModel):
    """Every grader spec: an unknown field is an error (a typo is named), types are strict ("10" is no
    integer, "yes" no boolean), and a spec never changes once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Named(Spec):
    """A spec that accepts OpenAI's ``name`` (the shaping graders, which sit in OpenAI-style multi specs)."""

    name: str | None = Field(None, description="OpenAI's grader name; accepted and ignored")


class OpenAIKeys(Named):
    """A spec of an OpenAI grader type, which also accepts its ``image_tag``."""

    image_tag: str | None = Field(None, description="OpenAI's grader image tag; accepted and ignored")


def _bad(field: str, value: Any, problem: str, fix: str) -> ValueError:
    return ValueError(f"field '{field}' = {value!r}: {problem}; {fix}")


def _tag_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z][\w-]*", value):
        raise ValueError("not a tag name; use letters, digits, '_' or '-', e.g. 'answer'")
    return value


def _template(source: str) -> str:
    template_paths(source)
    return source


Text = Annotated[str, Field(min_length=1)]
TagName = Annotated[str, Field(min_length=1), AfterValidator(_tag_name)]
TemplateText = Annotated[str, Field(min_length=1), AfterValidator(_template)]
Seconds = Annotated[FiniteFloat, Field(ge=0.01, le=600)]
Network = Literal["allow", "deny"]  # where user code may connect (rft.isolation.user_code)
ANSWER = "{{ item.answer }}"
OUTPUT = "{{ sample.output_text }}"


class ArithmeticSpec(Spec):
    """score 1 if the stripped completion is one integer (-?\\d+) equal to int(row[answer_field]), else 0"""

    type: Literal["arithmetic"] = "arithmetic"
    answer_field: Text = Field("answer", description="the row field holding the integer answer")
    max_chars: int = Field(32, ge=1, description="a longer completion scores 0")


FREE_TEXT_MODES = ("auto", "last_number")


class MathSpec(Spec):
    """score 1 if the one extracted final answer equals the gold (math-verify + SymPy), else 0"""

    type: Literal["math"] = "math"
    answer_field: Text = Field("answer", description="the row field holding the gold answer")
    extract: Literal["boxed", "tag", "hash", "auto", "last_number"] = Field(
        "boxed", description="the final answer: the last \\boxed{} (all boxes agree), the one <tag>, the one '####' "
        "line, math-verify's own free-text answer (auto), or the last number")
    tag: TagName = Field("answer", description="the tag that extract 'tag' reads")
    max_answer_chars: int = Field(300, ge=1, le=100_000, description="a longer answer scores 0")
    rel_tol: FiniteFloat = Field(1e-4, ge=0.0, le=0.5, description="|a - g| <= rel_tol * max(|a|, |g|) for plain "
                                 "numbers when one has a decimal point (else 1e-12)")
    timeout_s: Seconds = Field(3.0, description="wall clock of the child process that parses and compares")
    memory_mb: int = Field(2048, ge=256, description="memory limit of that child process")
    reject_echo: bool = Field(True, description="an answer (3+ chars, not the gold) copied from the prompt scores 0")
    max_completion_chars: int = Field(32_000, ge=1, le=10_000_000, description="auto/last_number: longer scores 0")

    @model_validator(mode="after")
    def _cap_only_for_free_text(self) -> "MathSpec":
        if "max_completion_chars" in self.model_fields_set and self.extract not in FREE_TEXT_MODES:
            raise _bad("max_completion_chars", self.max_completion_chars,
                       f"only read by extract 'auto' or 'last_number', not {self.extract!r}",
                       "remove it, or set extract to 'auto' or 'last_number'")
        return self


class CodeSpec(Spec):
    """score = tests passed / tests (partial_credit), running the completion's program in a sandbox"""

    type: Literal["code"] = "code"
    mode: Literal["function", "stdio"] = Field("function", description="compare entry_point(*args) with 'expected', "
                                               "or stdout for 'stdin' with 'expected_stdout'")
    timeout_s: FiniteFloat = Field(2.0, gt=0, le=600, description="wall clock of the whole run (all tests)")
    test_timeout_s: FiniteFloat | None = Field(None, gt=0, le=600, description="per test; null: timeout_s only")
    memory_mb: int = Field(512, ge=32, description="memory limit of the sandboxed program")
    partial_credit: bool = Field(True, description="score passed / total; false: 1 only when every test passes")
    float_tol: FiniteFloat | None = Field(None, ge=0, description="math.isclose rel/abs tolerance; null: exact")
    tuple_as_list: bool = Field(False, description="a returned tuple may equal an expected list")
    max_output_kb: int = Field(64, ge=1, description="output kept per test")
    processes: int = Field(16, ge=4, description="process limit inside the sandbox")
    isolation: Literal["auto", "bwrap", "unshare", "none"] = Field(
        "auto", description="auto: bwrap, else unshare, else refused with the fix; none (rlimits only: the program "
        "can read files and use the network) runs only when written here")
    require_isolation: bool = Field(False, description="refuse 'none' too (built-in tasks with hidden tests set it)")
    python: Text | None = Field(None, description="the interpreter that runs programs; null: the system python3")
    entry_point_field: Text = Field("entry_point", description="the row field naming the function to call")
    tests_field: Text = Field("tests", description="the row field holding the list of tests")


class StringCheckSpec(OpenAIKeys):
    """score 1 if the operation holds: eq input == reference, ne !=, like reference in input, ilike ignoring case"""

    type: Literal["string_check"] = "string_check"
    input: TemplateText = Field(OUTPUT, description="the text compared: a template over the sample and the row")
    reference: TemplateText = Field(ANSWER, description="the text compared with, a template")
    operation: Literal["eq", "ne", "like", "ilike"] = Field("eq", description="like/ilike reward padding; prefer eq")
    strip: bool = Field(False, description="strip whitespace from both sides first (OpenAI's does not)")
    max_chars: int = Field(10_000, ge=1, description="a longer input scores 0")


_REGEX_FLAGS = {"IGNORECASE": "i", "MULTILINE": "m", "DOTALL": "s"}


class RegexSpec(OpenAIKeys):
    """score 1 if the RE2 pattern matches the input (the whole input for fullmatch), else 0"""

    type: Literal["regex"] = "regex"
    pattern: Text | None = Field(None, description="the regex (RE2 syntax: no backreferences or lookaround)")
    pattern_field: Text | None = Field(None, description="instead of pattern: the row field holding one")
    mode: Literal["fullmatch", "search"] = Field("fullmatch", description="match the whole input, or anywhere")
    flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]] = Field(default_factory=list, description="regex flags")
    input: TemplateText = Field(OUTPUT, description="the text matched: a template over the sample and the row")
    max_chars: int = Field(10_000, ge=1, description="a longer input scores 0")

    @property
    def flag_letters(self) -> str:
        return "".join(sorted({_REGEX_FLAGS[f] for f in self.flags}))

    @model_validator(mode="after")
    def _one_pattern_that_compiles(self) -> "RegexSpec":
        if (self.pattern is None) == (self.pattern_field is None):
            raise ValueError("give exactly one of 'pattern' (a regex) or 'pattern_field' (a row field holding one)")
        if self.pattern is not None:
            try:
                compile_re2(self.pattern, self.flag_letters)
            except ValueError as e:
                raise _bad("pattern", self.pattern, f"RE2 cannot compile it ({e})",
                           "drop backreferences/lookaround; RE2 syntax is linear-time") from None
        return self


class TextSimilaritySpec(OpenAIKeys):
    """score = the similarity metric in [0, 1]; passed = score >= pass_threshold"""

    type: Literal["text_similarity"] = "text_similarity"
    input: TemplateText = Field(OUTPUT, description="the candidate text: a template over the sample and the row")
    reference: TemplateText = Field(ANSWER, description="the reference text: a template over the sample and the row")
    evaluation_metric: Literal["fuzzy_match", "bleu", "rouge_1", "rouge_2", "rouge_l"] = Field(
        "fuzzy_match", description="1 - indels / (len a + len b); sentence BLEU-4; F1 of n-gram or LCS overlap")
    pass_threshold: FiniteFloat = Field(1.0, ge=0.0, le=1.0, description="passed = score >= this")
    max_chars: int = Field(20_000, ge=1, description="a longer input scores 0")


class JsonSchemaSpec(Spec):
    """one strict JSON value, valid against the schema (else 0), scored by leaf-level F1 with the reference"""

    type: Literal["json_schema"] = "json_schema"
    schema_field: Text = Field("schema", description="the row field holding the schema, when 'schema' is null")
    reference_field: Text = Field("reference", description="the row field holding the reference (none: gate only)")
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="a Draft 2020-12 schema for all rows")
    score: Literal["f1", "exact"] = Field("f1", description="F1 of matched leaves, or 1 only if all match")
    unordered_arrays: bool = Field(False, description="match array elements by best assignment, not index")
    allow_prose: bool = Field(False, description="read the one fenced block even with text around it")
    max_chars: int = Field(50_000, ge=1, description="a longer completion is invalid")
    max_unordered: int = Field(64, ge=1, le=500, description="longer arrays are invalid with unordered_arrays")

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as e:
                raise ValueError(f"not a valid Draft 2020-12 schema ({e.message}); fix the schema") from None
        return schema


class SqlSpec(Spec):
    """score 1 if the candidate query's rows equal the gold query's on the row's SQLite database, else 0"""

    type: Literal["sql"] = "sql"
    db_field: Text = Field("db", description="the row field holding the database path (relative to the data file)")
    gold_field: Text = Field("gold_sql", description="the row field holding the gold query")
    database: Text | None = Field(None, description="one database file for every row instead of db_field")
    compare: Literal["multiset", "set"] = Field("multiset", description="multiset (ordered under ORDER BY; "
                                                "Spider), or set (BIRD)")
    ignore_column_order: bool = Field(False, description="equal under some permutation of the candidate's columns")
    max_rows: int = Field(10_000, ge=1, description="more rows fail the candidate (and skip a gold)")
    max_steps: int = Field(5_000_000, ge=1000, description="SQLite VM steps before a query is stopped")
    timeout_s: Seconds = Field(2.0, description="wall clock before a query is stopped")


class LogicSpec(Spec):
    """entailment: the one verdict word matches whether premises |= conclusion (SymPy); knights_knaves: every role"""

    type: Literal["logic"] = "logic"
    mode: Literal["entailment", "knights_knaves"] = Field("entailment", description="the puzzle kind")
    extract: Literal["tag", "all"] = Field("tag", description="read the one <tag>..</tag>, or the whole completion")
    tag: TagName = Field("answer", description="the tag that extract 'tag' reads")
    premises_field: Text = Field("premises", description="the row field holding the premises (a list of formulas)")
    conclusion_field: Text = Field("conclusion", description="the row field holding the conclusion")
    answer_field: Text = Field("answer", description="the row field holding the answer (roles, or a checked verdict)")
    roles: list[Text] = Field(default_factory=lambda: ["knight", "knave"], description="knights_knaves role words")
    timeout_s: Seconds = Field(5.0, description="wall clock of the solver's child process")

    @field_validator("roles")
    @classmethod
    def _distinct_words(cls, roles: list[str]) -> list[str]:
        lowered = [r.lower() for r in roles]
        if len(set(lowered)) < 2 or not all(re.fullmatch(r"[a-z]+", r) for r in lowered):
            raise ValueError("need two or more distinct words; e.g. [\"knight\", \"knave\"]")
        return lowered


class FormatSpec(Spec):
    """score 1 for exactly <think> T </think> <answer> A </answer> (T, A non-empty), else 0"""

    type: Literal["format"] = "format"
    think_tag: TagName = Field("think", description="the reasoning block's tag")
    answer_tag: TagName = Field("answer", description="the answer block's tag")
    min_think_chars: int = Field(1, ge=0, description="non-space characters the think block needs")
    think_in_prompt: bool = Field(False, description="the chat template opened <think>: the completion must not")

    @model_validator(mode="after")
    def _two_tags(self) -> "FormatSpec":
        if self.think_tag == self.answer_tag:
            raise _bad("answer_tag", self.answer_tag, "same as think_tag", "give the two blocks different tag names")
        return self


class OverlongSpec(Named):
    """penalty R(L) = 0 up to L_max - L_cache, then ((L_max - L_cache) - L) / L_cache, -1 past L_max (DAPO)"""

    type: Literal["overlong"] = "overlong"
    max_length: int = Field(ge=1, description="L_max: the length scored -1 beyond, e.g. 1024")
    cache_length: int = Field(ge=1, description="L_cache: the soft buffer before max_length, e.g. 256")
    unit: Literal["chars", "tokens"] = Field("chars", description="tokens: ceil(chars / chars_per_token)")
    chars_per_token: FiniteFloat = Field(4.0, ge=0.1, le=100, description="the token estimate's divisor")

    @model_validator(mode="after")
    def _buffer_fits(self) -> "OverlongSpec":
        if self.cache_length > self.max_length:
            raise _bad("cache_length", self.cache_length, f"larger than max_length ({self.max_length})",
                       "use a buffer no longer than max_length")
        return self


class RepetitionSpec(Named):
    """penalty R = max_penalty * (1 - distinct n-grams / total n-grams) of the words (0 under n words)"""

    type: Literal["repetition"] = "repetition"
    ngram_size: int = Field(3, ge=1, le=100, description="n of the word n-grams")
    max_penalty: FiniteFloat = Field(-1.0, ge=-1.0, le=0.0, description="the penalty when every n-gram repeats")


class MultiSpec(OpenAIKeys):
    """score = sum_i w_i * s_i over named sub-graders, or the calculate_output formula of their scores"""

    type: Literal["multi"] = "multi"
    graders: dict[str, GraderSpec] = Field(description="name -> sub-grader spec; names are formula variables")
    weights: dict[str, FiniteFloat] | None = Field(None, description="name -> weight (a plain weighted sum)")
    calculate_output: Text | None = Field(None, description="instead: a formula, e.g. '0.9 * correct + 0.1 * format'")
    pass_threshold: FiniteFloat | None = Field(None, description="passed = score >= this; null: all verdicts pass")

    @field_validator("graders")
    @classmethod
    def _usable_names(cls, graders: dict[str, Any]) -> dict[str, Any]:
        if not graders:
            raise ValueError("empty; name at least one sub-grader, e.g. {\"correct\": {\"type\": \"math\"}}")
        for name in graders:
            if not name.isidentifier() or name in FUNCTIONS:
                raise ValueError(f"name {name!r} is not usable in a formula; use names like 'correct' or 'format_ok'")
        return graders

    @model_validator(mode="after")
    def _one_combination(self) -> "MultiSpec":
        if (self.weights is None) == (self.calculate_output is None):
            raise ValueError("give exactly one of 'weights' (name -> number) or 'calculate_output' (a formula)")
        if self.weights is not None and set(self.weights) != set(self.graders):
            raise _bad("weights", self.weights, "must give one finite number for each sub-grader",
                       f"give weights for exactly {sorted(self.graders)}")
        if self.calculate_output is not None:
            Formula.parse(self.calculate_output, set(self.graders))
        return self


class PythonSpec(OpenAIKeys):
    """score = the number your grade(sample, item) returns (OpenAI), or your TRL reward function's"""

    type: Literal["python"] = "python"
    source: Text | None = Field(None, description="inline Python defining grade(sample, item) -> float")
    file: Text | None = Field(None, description="a .py file defining grade(sample, item) -> float")
    function: Text | None = Field(None, description="a TRL reward function: 'module:function' or 'file.py:function'")
    pass_threshold: FiniteFloat | None = Field(None, description="passed = score >= this; null: no verdict")
    timeout_s: Seconds = Field(30.0, description="wall clock of one call; past it the call is killed and scores 0")
    network: Network = Field("allow", description="deny: the code runs in a process with no network (refused "
                             "where the machine cannot make a network namespace); allow: the caller's network")

    @model_validator(mode="after")
    def _one_source(self) -> "PythonSpec":
        given = [k for k in ("source", "file", "function") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'source' (inline grade(sample, item)), 'file' (a .py defining it) "
                             f"or 'function' (TRL-style 'module:function'); got {given or 'none'}")
        return self


class VerifiersSpec(Spec):
    """score = sum of a verifiers environment's rewards times its rubric's weights, scored offline"""

    type: Literal["verifiers"] = "verifiers"
    environment: Text = Field(description="a .py file, an environment package or project directory, or an "
                              "installed environment's name (load_environment / a v1 Taskset)")
    args: dict[str, Any] = Field(default_factory=dict, description="load_environment(**args), or the taskset's config")
    pass_threshold: FiniteFloat | None = Field(None, description="passed = score >= this; null: full marks pass")
    timeout_s: Seconds = Field(30.0, description="wall clock of one grade's rewards")
    network: Network = Field("deny", description="deny: rewards run in a process with no network (refused where "
                             "the machine cannot make a network namespace); allow: the caller's network")


class ReasoningGymSpec(Spec):
    """score = the reasoning-gym dataset's own score_answer of one extracted answer (all or nothing by default)"""

    type: Literal["reasoning_gym"] = "reasoning_gym"
    partial_credit: bool = Field(False, description="pass the scorer's partial credit through (it pays some wrong "
                                 "answers); false: 1 when it scores 1, else 0")
    extract: Literal["tag_or_last_line", "tag"] = Field("tag_or_last_line", description="the single <answer> tag, "
                                                        "else the last non-empty line (tag_or_last_line), or the tag only")
    max_answer_chars: int = Field(10_000, ge=1, le=1_000_000, description="a longer answer scores 0 unread")
    timeout_s: Annotated[FiniteFloat, Field(ge=0.1, le=600)] = Field(10.0, description="the scorer's wall clock")
    memory_mb: int = Field(2048, ge=256, description="the scoring child's memory limit")


_NO_JUDGE = ("names no judge; rft runs model graders on a judge you own: add judge: {model: smollm2-135m-instruct} "
             "(a local model) or judge: {base_url: http://127.0.0.1:8000/v1} (your server); in a job body "
             "--set grader.judge.model=... (grader.graders.<name>.judge... inside a multi)")


class ScoreModelSpec(OpenAIKeys):
    """score = the number the judge replies (strict: a reply that is not one number in range scores 0)"""

    type: Literal["score_model"] = "score_model"
    model: Text = Field(description="the model's name (OpenAI's, e.g. gpt-4o-2024-08-06); judge says who answers")
    input: list[JudgeMessage] = Field(min_length=1, description="the judge's chat messages (templates)")
    range: list[FiniteFloat] = Field([0.0, 1.0], min_length=2, max_length=2, description="[lowest, highest] score")
    pass_threshold: FiniteFloat | None = Field(None, description="passed = score >= this; null: no verdict")
    sampling_params: JudgeSampling = Field(default_factory=JudgeSampling, description="temperature, top_p, seed, ...")
    judge: JudgeSpec | None = Field(None, description="who answers: {model: DIR|preset} or {base_url: URL}")

    @model_validator(mode="after")
    def _judged(self) -> "ScoreModelSpec":
        if self.range[0] >= self.range[1]:
            raise _bad("range", list(self.range), "lowest is not below highest", "e.g. [0, 1]")
        if self.judge is None:
            raise ValueError(f"model {self.model!r} {_NO_JUDGE}")
        return self


class LabelModelSpec(OpenAIKeys):
    """score 1 if the judge's reply is one of passing_labels, 0 for another label; no label: 0 with the reason"""

    type: Literal["label_model"] = "label_model"
    model: Text = Field(description="the model's name (OpenAI's, e.g. gpt-4o-2024-08-06); judge says who answers")
    input: list[JudgeMessage] = Field(min_length=1, description="the judge's chat messages (templates)")
    labels: list[Text] = Field(min_length=2, description="the labels the judge may reply")
    passing_labels: list[Text] = Field(min_length=1, description="the labels that pass (a subset of labels)")
    sampling_params: JudgeSampling = Field(default_factory=JudgeSampling, description="temperature, top_p, seed, ...")
    judge: JudgeSpec | None = Field(None, description="who answers: {model: DIR|preset} or {base_url: URL}")

    @model_validator(mode="after")
    def _judged(self) -> "LabelModelSpec":
        if not set(self.passing_labels) <= set(self.labels):
            raise _bad("passing_labels", self.passing_labels, "not a subset of labels", f"choose from {self.labels}")
        if self.judge is None:
            raise ValueError(f"model {self.model!r} {_NO_JUDGE}")
        return self


GraderSpec = Annotated[
    Union[ArithmeticSpec, MathSpec, CodeSpec, StringCheckSpec, RegexSpec, TextSimilaritySpec, JsonSchemaSpec,
          SqlSpec, LogicSpec, FormatSpec, OverlongSpec, RepetitionSpec, MultiSpec, PythonSpec, VerifiersSpec,
          ReasoningGymSpec, ScoreModelSpec, LabelModelSpec],
    Field(discriminator="type"),
]
MultiSpec.model_rebuild()
SPECS: dict[str, type[Spec]] = {m.model_fields["type"].default: m for m in get_args(get_args(GraderSpec)[0])}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(GraderSpec)


def parse_spec(spec: Any) -> Any:
    """The typed spec of a spec dict, e.g. ``{"type": "math"}`` -> ``MathSpec``; :class:`SpecError` if invalid."""
    try:
        return _ADAPTER.validate_python(spec)
    except ValidationError as e:
        raise spec_error(e, SPECS) from None
