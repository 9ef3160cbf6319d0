"""The Kayenta API under /kayenta (DESIGN.md §7.2, FRONT-DOORS.md §3-§6).

Argo Rollouts' built-in `kayenta` provider (address `http://<analysisd>/kayenta`) and
Kayenta clients such as Spinnaker's canary stage talk to analysisd as they would to
Kayenta: canary configs (configs.py), single judgements (canary.py), standalone
analyses of several judgements (standalone.py) and Kayenta's RemoteJudge contract
(remote_judge.py). Every execution is an ordinary AnalysisRun in the namespace of its
application (common.py), listed, watched and webhooked like any other.
"""

from __future__ import annotations

from aiohttp import web

from analysisd.api.kayenta import canary, configs, remote_judge, standalone

PREFIX = "/kayenta"


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(PREFIX + "/canaryConfig", configs.list_configs)
    router.add_post(PREFIX + "/canaryConfig", configs.create_config)
    router.add_get(PREFIX + "/canaryConfig/{configId}", configs.get_config)
    router.add_put(PREFIX + "/canaryConfig/{configId}", configs.replace_config)
    router.add_delete(PREFIX + "/canaryConfig/{configId}", configs.delete_config)
    # One path: POST names a config, GET an execution (Kayenta's two routes look alike).
    router.add_post(PREFIX + "/canary/{id}", canary.post_canary)
    router.add_get(PREFIX + "/canary/{id}", canary.get_canary)
    # POST names a stored config, GET an analysis (as /canary/{id}).
    router.add_post(PREFIX + "/standalone_canary_analysis", standalone.post_standalone)
    router.add_post(PREFIX + "/standalone_canary_analysis/{id}", standalone.post_standalone)
    router.add_get(PREFIX + "/standalone_canary_analysis/{id}", standalone.get_standalone)
    router.add_post(PREFIX + "/judge", remote_judge.post_judge)
    router.add_get(PREFIX + "/judges", remote_judge.list_judges)
