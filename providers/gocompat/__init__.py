"""Go's behaviour that analysisd must copy, written once: RE2 regexps, strconv, math,
time.ParseDuration, float formatting (%v, strconv 'f', encoding/json) and json.Marshal text.

A leaf package: it imports nothing of ours (its parts import only each other), and callers
import from ``providers.gocompat`` itself. The condition language (analysisd.expr), the
spec's durations (analysisd.durations), rules.py and every provider use it; where a caller
needs a different acceptance (a provider refusing a zero interval) it keeps a thin wrapper
around the one parser here. Parts: regexp, strconv, gomath (int64, Round, Pow), durations
(time.ParseDuration), text (%v / 'f' / JSON floats, json.Marshal, fmt's %v, Go type names).

- Regexps are Go's `regexp` package, i.e. RE2 syntax and linear-time matching, through
  google-re2 (the C++ RE2 that Go's package was ported from). Go rejects a few escapes C++ RE2
  accepts (`\\C`); those are refused here too.
- ParseFloat / ParseInt follow Go's strconv, including `_` separators and hex floats.
- Float-to-int conversion follows amd64 (what Argo's images run on): NaN, ±Inf and anything
  out of range become math.MinInt64.
- Round and Pow are ports of Go's math.Round / math.Pow, which differ from C's in ways a
  condition can observe (Pow of an integer exponent is computed by repeated squaring).
"""

from providers.gocompat._base import INT64_MAX, INT64_MIN, GoError
from providers.gocompat.durations import parse_duration_ns, parse_duration_seconds
from providers.gocompat.gomath import float_to_int64, go_pow, go_round, wrap_int64
from providers.gocompat.regexp import compile_regexp, regexp_match
from providers.gocompat.strconv import go_quote, parse_float, parse_int
from providers.gocompat.text import (
    GO_FLOAT64,
    GO_FLOAT64_SLICE,
    GO_METRIC_DATA_RESULTS,
    GO_NIL,
    format_f,
    format_float,
    format_json,
    format_v,
    json_go_type,
    json_marshal,
    json_string,
    sprint,
)

__all__ = [
    "GO_FLOAT64",
    "GO_FLOAT64_SLICE",
    "GO_METRIC_DATA_RESULTS",
    "GO_NIL",
    "INT64_MAX",
    "INT64_MIN",
    "GoError",
    "compile_regexp",
    "float_to_int64",
    "format_f",
    "format_float",
    "format_json",
    "format_v",
    "go_pow",
    "go_quote",
    "go_round",
    "json_go_type",
    "json_marshal",
    "json_string",
    "parse_duration_ns",
    "parse_duration_seconds",
    "parse_float",
    "parse_int",
    "regexp_match",
    "sprint",
    "wrap_int64",
]
