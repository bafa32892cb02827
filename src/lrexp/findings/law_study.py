"""The study's laws stage (``scripts/lm_findings.py``): the runs the laws need at the
constant's best LR, the fit and the held-out table (:mod:`lrexp.findings.laws`), and the
synthesized schedule's paired verification (:mod:`lrexp.findings.verify`), written to
``laws.md``, ``laws.json``, ``laws.png`` and ``laws_fit.json`` in ``--out``."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict

import numpy as np

from lrexp.findings.claims import DERIVED_ARMS
from lrexp.findings.launching import launch, launch_grouped
from lrexp.findings.laws import (
    FIT_ARMS,
    FIT_FROM,
    HELD_OUT_ARMS,
    LAW_LOSS,
    OPTIMIZED_ARM,
    figure,
    final_prediction,
    fit_laws,
    law_curves,
    law_rows,
    study_curves,
    summary,
    table,
)
from lrexp.findings.results import read_results
from lrexp.findings.verify import Table, rival, synthesize, verify_rows, verify_table
from lrexp.predict.commands import fit_lines, planned, write_fits
from lrexp.predict.laws import make_law, predict_curve
from lrexp.predict.runs import RunCurves

LAW_ARMS = (*FIT_ARMS, *HELD_OUT_ARMS)


def run_law_runs(args: argparse.Namespace, law_lr: float) -> None:
    """Every missing run of the laws' arms at ``law_lr``, seeds below ``--law-seeds``: the
    full-length and short arms first, then the forks of the constant trunk."""
    results = read_results(args.tracking_uri, args.experiment)
    forks = [a for a in LAW_ARMS if DERIVED_ARMS.get(a) == "lm_constant"]
    for stage in ([a for a in LAW_ARMS if a not in forks], forks):
        missing = {
            arm: ([law_lr], [s for s in range(args.law_seeds) if not results.has(arm, law_lr, s)])
            for arm in stage
        }
        launch_grouped(missing, args)


def optimized_lrs(law_lr: float, chosen: Table) -> np.ndarray:
    """The LR of every update of the synthesized schedule, as training plans it."""
    (config,) = planned(
        [
            "experiment=lm_findings",
            f"study_arm={OPTIMIZED_ARM}",
            f"optimizer.lr={law_lr}",
            *chosen.overrides(),
        ]
    )
    return config.lrs


def laws_stage(args: argparse.Namespace, best: dict[str, float], run: bool) -> list[str]:
    """Fit, tabulate and verify (``run`` False: launch nothing, report what the store holds)."""
    law_lr = best["lm_constant"]
    if run:
        run_law_runs(args, law_lr)
    study = study_curves(args.tracking_uri, args.experiment)
    curves = law_curves(study, law_lr, LAW_ARMS, args.law_seeds)
    fits = fit_laws(curves)
    args.out.mkdir(parents=True, exist_ok=True)
    fitted = RunCurves([c for c in curves if c.label in FIT_ARMS], study.loss_key)
    fit_path = write_fits(fits, fitted, args.out / "laws_fit.json")
    rows = law_rows(fits, curves, args.margin)
    figure(fits, curves, args.out / "laws.png")

    chosen, printed = synthesize(fit_path, law_lr, args.out / "optimized")
    results = read_results(args.tracking_uri, args.experiment)
    rival_arm = rival(results, best, args.verify_seeds)
    rival_lr = best[rival_arm]
    seeds = range(args.verify_seeds)

    def ours(s: int) -> bool:
        return chosen.matches(results.tables.get((OPTIMIZED_ARM, law_lr, s)))

    if run:
        missing = [s for s in seeds if not ours(s)]
        if missing:
            launch([OPTIMIZED_ARM], [law_lr], missing, args, chosen.overrides())
        rival_missing = [s for s in seeds if not results.has(rival_arm, rival_lr, s)]
        if rival_missing:
            launch([rival_arm], [rival_lr], rival_missing, args)
        results = read_results(args.tracking_uri, args.experiment)
    optimized = {s: results.runs[OPTIMIZED_ARM][(law_lr, s)] for s in seeds if ours(s)}
    rivals = {
        s: results.runs[rival_arm][(rival_lr, s)]
        for s in seeds
        if results.has(rival_arm, rival_lr, s)
    }
    mpl = fits["mpl"]
    lrs = optimized_lrs(law_lr, chosen)
    predicted_optimized = float(
        predict_curve(make_law("mpl"), mpl.theta, lrs, np.array([len(lrs)]))[0]
    )
    if run:  # the rival's seeds may be new
        study = study_curves(args.tracking_uri, args.experiment)
    rival_curves = law_curves(study, rival_lr, [rival_arm], args.verify_seeds)
    predicted_rival = (
        float(np.mean([final_prediction("mpl", mpl, c) for c in rival_curves]))
        if rival_curves
        else math.nan
    )
    predicted_gain = predicted_optimized - predicted_rival
    checked = verify_rows(optimized, rivals, args.margin)

    lines = [
        f"## The laws on the language model (peak LR {law_lr:g}, {LAW_LOSS} from step {FIT_FROM}; "
        f"fitted on {', '.join(FIT_ARMS)})",
        "",
        *(f"- {line}" for line in fit_lines(fits)),
        "",
        *table(rows),
        "",
        f"## lrexp-predict optimize (mpl) against {rival_arm} (lr {rival_lr:g})",
        "",
        f"- the table: at {list(chosen.at)}, values {[round(v, 4) for v in chosen.values]}",
        *(f"- {line}" for line in printed if "predicted" in line),
        f"- predicted final {LAW_LOSS}: lm_optimized {predicted_optimized:.4f}, {rival_arm} "
        f"{predicted_rival:.4f}",
        "",
        *verify_table(checked, rival_arm, predicted_gain),
    ]
    (args.out / "laws.md").write_text("\n".join(lines) + "\n")
    payload = {
        "law_lr": law_lr,
        "fit_from": FIT_FROM,
        "rows": [
            {**asdict(r), "rel_error": r.rel_error, "sign_agrees": r.sign_agrees} for r in rows
        ],
        "summary": summary(rows),
        "optimized": {
            "at": chosen.at,
            "values": chosen.values,
            "rival": rival_arm,
            "rival_lr": rival_lr,
            "predicted": predicted_optimized,
            "predicted_rival": predicted_rival,
            "checked": [asdict(r) for r in checked],
        },
    }
    (args.out / "laws.json").write_text(json.dumps(payload, indent=2))
    return lines
