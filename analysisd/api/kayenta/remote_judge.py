"""POST /kayenta/judge: Kayenta's RemoteJudge contract, so a Kayenta installation keeps
fetching its metrics and has analysisd judge them.

Kayenta's `RemoteJudge-v1.0` posts `{"canaryConfig", "scoreThresholds": {pass,
marginal}, "metricSetPairList": [{name, id, tags, values: {control: [..],
experiment: [..]}, scopes, attributes}]}` and reads a CanaryJudgeResult `{judgeName,
results[], groupScores[], score}`: our NetflixACAJudge's, each metric with its
explanation. Values may be numbers, null or "NaN" (Jackson writes NaN as a string).
Nothing is stored and no run is made: this is a computation. With tokens configured
any valid token may use it. GET /kayenta/judges lists the judge, as Kayenta does.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import web

from analysisd.api.errors import ApiError
from analysisd.api.kayenta.canary import thresholds_of
from analysisd.api.kayenta.common import obj, read_json
from analysisd.api.kayenta.configs import check_config
from analysisd.judge.config import parse_canary_config
from analysisd.judge.errors import JudgeError
from analysisd.judge.judge import judge
from analysisd.judge.kayenta_result import JUDGE_NAME, kayenta_judge_result

_NAN_TEXT = frozenset({"NaN", "nan", "Infinity", "-Infinity"})


def _values(raw: Any, where: str) -> list[float]:
    if not isinstance(raw, list):
        raise ApiError(400, f"{where}: expected a list of numbers", field=where)
    out: list[float] = []
    for index, value in enumerate(raw):
        if value is None:
            out.append(math.nan)
        elif (isinstance(value, str) and value in _NAN_TEXT) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            out.append(float(value))
        else:
            raise ApiError(400, f"{where}[{index}]: expected a number, got {value!r}", field=where)
    return out


def _pairs(raw: Any, config_metrics: set[str]) -> dict[str, tuple[list[float], list[float]]]:
    if not isinstance(raw, list):
        raise ApiError(400, "metricSetPairList: expected a list", field="metricSetPairList")
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    for index, item in enumerate(raw):
        where = f"metricSetPairList[{index}]"
        entry = obj(item, where)
        name = entry.get("name")
        if not isinstance(name, str) or name not in config_metrics:
            raise ApiError(
                400,
                f"{where}.name: {name!r} is not a metric of the canary config",
                field=f"{where}.name",
            )
        if name in pairs:
            raise ApiError(400, f"{where}.name: {name!r} given twice", field=f"{where}.name")
        values = obj(entry.get("values"), f"{where}.values")
        pairs[name] = (
            _values(values.get("control"), f"{where}.values.control"),
            _values(values.get("experiment"), f"{where}.values.experiment"),
        )
    return pairs


async def post_judge(request: web.Request) -> web.Response:
    body = obj(await read_json(request), "body")
    raw_config = obj(body.get("canaryConfig"), "canaryConfig")
    check_config(raw_config, "canaryConfig")
    config = parse_canary_config(raw_config)
    names = {m.name for m in config.metrics}
    pairs = _pairs(body.get("metricSetPairList"), names)
    pass_t, marginal_t = thresholds_of(body.get("scoreThresholds"), raw_config, "scoreThresholds")
    try:
        result = await asyncio.to_thread(
            judge, config, pairs, pass_threshold=pass_t, marginal_threshold=marginal_t
        )
    except JudgeError as exc:
        raise ApiError(400, str(exc), field="metricSetPairList") from None
    except ArithmeticError:  # numbers past what the score's arithmetic holds
        raise ApiError(
            400,
            "canaryConfig: the score cannot be computed from these weights and values",
            field="canaryConfig",
        ) from None
    return web.json_response(kayenta_judge_result(result.as_dict()))


async def list_judges(request: web.Request) -> web.Response:
    return web.json_response([{"name": JUDGE_NAME, "visible": True}])
