"""interaction_scores on synthetic studies whose structure is known: exact verdicts."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy import stats

from hypertune.errors import ReportError
from hypertune.report import interaction_scores, main_effects

SHARES = ["interaction", "low", "high"]


def grid(metric, seeds: int = 1, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """A full 3 x 4 x 2 grid over a, b, c with valid_loss = metric(a, b, c) + noise."""
    rng = np.random.default_rng(seed)
    rows = []
    levels = itertools.product([1, 2, 3], [0.125, 0.25, 0.5, 1.0], ["x", "y"], range(seeds))
    for n, (a, b, c, s) in enumerate(levels):
        value = metric(a, b, c) + noise * rng.standard_normal()
        rows.append(
            {"trial_id": f"t{n}", "status": "TERMINATED", "a": a, "b": b, "c": c,
             "valid_loss": value, "epochs": 3, "seed": s}
        )  # fmt: skip
    return pd.DataFrame(rows)


def random_study(n: int, interaction: float, seed: int = 0) -> pd.DataFrame:
    """Random search: log-uniform lr, integer hidden_size, a categorical act."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lr, hidden = 10 ** rng.uniform(-4, -1), int(rng.integers(16, 257))
        act = ["relu", "gelu", "tanh"][int(rng.integers(3))]
        u, v = (np.log10(lr) + 2.5) / 1.5, (np.log2(hidden) - 6) / 2
        loss = 1 + 0.3 * u + 0.2 * (act == "relu") + interaction * u * v
        rows.append(
            {"trial_id": f"t{i}", "status": "TERMINATED", "lr": lr, "hidden_size": hidden,
             "act": act, "valid_loss": loss + 0.1 * rng.standard_normal(), "epochs": 3}
        )  # fmt: skip
    return pd.DataFrame(rows)


def verdicts(table: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {(r.x, r.y): r.verdict for r in table.itertuples()}


def check_ranges(table: pd.DataFrame) -> None:
    for column in SHARES:
        values = table[column].dropna()
        assert ((values >= 0) & (values <= 1)).all(), column
    estimated = table.dropna(subset=["interaction"])
    assert (estimated["low"] <= estimated["interaction"]).all()
    assert (estimated["interaction"] <= estimated["high"]).all()


def additive(a, b, c):
    return 2.0 * a + np.log(b) + (c == "y")


def product(a, b, c):  # a and b interact (no main effect of either), c only shifts
    return (a - 2) * (np.log2(b) + 1.5) + 0.3 * (c == "y")


def test_additive_grid_without_seeds_has_no_interaction() -> None:
    table = interaction_scores(grid(additive), "valid_loss", ["a", "b", "c"])
    assert set(table["verdict"]) == {"not above noise"}
    assert set(table["method"]) == {"two-way ANOVA"}  # the three-way terms are the error
    assert table["error_df"].iloc[0] == 24 - 18
    check_ranges(table)


def test_planted_interaction_in_a_grid_without_seeds_ranks_first() -> None:
    table = interaction_scores(grid(product), "valid_loss", ["a", "b", "c"])
    assert verdicts(table) == {
        ("a", "b"): "interacts",
        ("a", "c"): "not above noise",
        ("b", "c"): "not above noise",
    }
    assert (table.iloc[0]["x"], table.iloc[0]["y"]) == ("a", "b")
    assert table.iloc[0]["interaction"] > 0.9
    check_ranges(table)


def test_seeded_grid_finds_the_planted_pair_and_not_the_noise() -> None:
    noisy = grid(product, seeds=3, noise=0.5)
    assert verdicts(interaction_scores(noisy, "valid_loss", ["a", "b", "c"])) == {
        ("a", "b"): "interacts",
        ("a", "c"): "not above noise",
        ("b", "c"): "not above noise",
    }
    pure = grid(lambda a, b, c: 0.0, seeds=3, noise=0.5)
    table = interaction_scores(pure, "valid_loss", ["a", "b", "c"])
    assert set(table["verdict"]) == {"not above noise"}
    check_ranges(table)


def test_two_parameters_without_replicates_use_tukeys_test() -> None:
    # Tukey's test sees interactions of the product kind: the effect of a grows with b.
    single = grid(lambda a, b, c: a * (np.log2(8 * b) + 1)).query("c == 'x'")
    table = interaction_scores(single, "valid_loss", ["a", "b"])
    assert table.iloc[0][["verdict", "method"]].tolist() == ["interacts", "Tukey 1-df"]
    flat = interaction_scores(grid(additive).query("c == 'x'"), "valid_loss", ["a", "b"])
    assert flat.iloc[0][["verdict", "method"]].tolist() == ["not above noise", "Tukey 1-df"]
    check_ranges(table)


def test_incomplete_grid_still_finds_the_planted_pair() -> None:
    results = grid(product, seeds=2)
    missing = (results["a"] == 3) & (results["b"] == 1.0)  # one combination never ran
    table = interaction_scores(results[~missing], "valid_loss", ["a", "b", "c"])
    assert verdicts(table)[("a", "b")] == "interacts"
    assert table.iloc[0]["cells"] == 11
    check_ranges(table)


def test_balanced_two_by_two_matches_the_anova_by_hand() -> None:
    # Cell means 1, 2 / 3, 8, two trials each at mean +- 0.5: within SS 2 on 4 df (MSE 0.5);
    # SS rows 32, columns 18, interaction 8, total 60.
    rows = []
    for (a, b), mean in {(0, 0): 1.0, (1, 0): 2.0, (0, 1): 3.0, (1, 1): 8.0}.items():
        for delta in (-0.5, 0.5):
            rows.append({"status": "TERMINATED", "a": a, "b": b, "m": mean + delta})
    table = interaction_scores(pd.DataFrame(rows), "m", ["a", "b"])
    row = table.iloc[0]
    assert row["interaction"] == pytest.approx((8 - 0.5) / 60)
    assert row["p_value"] == pytest.approx(stats.f.sf(16.0, 1, 4))
    assert row["error_df"] == 4
    assert row["low"] < row["interaction"] < row["high"]
    # The main effects come from the same two-way fit, in one ranking for the study.
    mains = main_effects(pd.DataFrame(rows), "m", ["a", "b"]).set_index("parameter")
    assert mains.index.tolist() == ["b", "a"]  # strongest first
    assert mains.loc["b", "share"] == pytest.approx((32 - 0.5) / 60)
    assert mains.loc["a", "share"] == pytest.approx((18 - 0.5) / 60)
    assert mains.loc["b", "p_value"] == pytest.approx(stats.f.sf(64.0, 1, 4))
    assert (mains["low"] < mains["share"]).all() and (mains["share"] < mains["high"]).all()
    assert set(mains["method"]) == {"two-way ANOVA"}


def test_random_search_finds_the_planted_pair_and_not_the_noise() -> None:
    table = interaction_scores(random_study(60, interaction=1.0), "valid_loss")
    assert verdicts(table) == {
        ("lr", "hidden_size"): "interacts",
        ("lr", "act"): "not above noise",
        ("hidden_size", "act"): "not above noise",
    }
    assert (table.iloc[0]["x"], table.iloc[0]["y"]) == ("lr", "hidden_size")
    check_ranges(table)
    none = interaction_scores(random_study(60, interaction=0.0), "valid_loss")
    assert set(none["verdict"]) == {"not above noise"}
    check_ranges(none)


def test_sparse_study_has_too_few_trials_never_a_confident_zero() -> None:
    table = interaction_scores(random_study(10, interaction=1.0), "valid_loss")
    assert set(table["verdict"]) == {"too few trials"}
    assert table["interaction"].isna().all()
    assert (table["low"] == 0).all() and (table["high"] == 1).all()
    check_ranges(table)


def test_the_same_study_gives_the_same_table() -> None:
    results = random_study(40, interaction=0.5)
    assert_frame_equal(
        interaction_scores(results, "valid_loss"), interaction_scores(results, "valid_loss")
    )


def test_p_values_match_statsmodels_anova_holm_adjusted() -> None:
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm
    from statsmodels.stats.multitest import multipletests

    results = grid(product, seeds=2, noise=0.3)
    formula = "valid_loss ~ (C(a) + C(b) + C(c)) ** 2"
    anova = anova_lm(ols(formula, data=results).fit(), typ=2)
    terms = {("a", "b"): "C(a):C(b)", ("a", "c"): "C(a):C(c)", ("b", "c"): "C(b):C(c)"}
    raw = [anova.loc[term, "PR(>F)"] for term in terms.values()]
    expected = dict(zip(terms, multipletests(raw, method="holm")[1], strict=True))
    table = interaction_scores(results, "valid_loss", ["a", "b", "c"])
    got = {(r.x, r.y): r.p_value for r in table.itertuples()}
    assert got == pytest.approx(expected, rel=1e-6)


def test_main_effects_are_one_ranking_from_the_two_way_fit_as_statsmodels_has_it() -> None:
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    results = grid(product, seeds=2, noise=0.3)
    fit = ols("valid_loss ~ (C(a) + C(b) + C(c)) ** 2", data=results).fit()
    anova = anova_lm(fit, typ=2)
    total = float(((results["valid_loss"] - results["valid_loss"].mean()) ** 2).sum())
    mains = main_effects(results, "valid_loss", ["a", "b", "c"]).set_index("parameter")
    for name in ("a", "b", "c"):
        term = anova.loc[f"C({name})"]
        share = max(term["sum_sq"] - term["df"] * fit.mse_resid, 0.0) / total
        assert mains.loc[name, "share"] == pytest.approx(share, rel=1e-6, abs=1e-12)
        assert mains.loc[name, "p_value"] == pytest.approx(term["PR(>F)"], rel=1e-6)
        assert mains.loc[name, "low"] <= mains.loc[name, "share"] <= mains.loc[name, "high"]
    assert mains["share"].is_monotonic_decreasing
    assert mains["share"].sum() <= 1


def test_a_study_too_small_for_interactions_ranks_main_effects_additively() -> None:
    # 12 trials of a 3 x 4 grid: the two-way model leaves no error, the additive one 6 df.
    results = grid(additive).query("c == 'x'")
    mains = main_effects(results, "valid_loss", ["a", "b"])
    assert set(mains["method"]) == {"additive ANOVA"}
    assert mains["parameter"].tolist() == ["a", "b"]  # 2a spans 4, log b spans 2.1
    fixed = main_effects(results.assign(d=1), "valid_loss", ["a", "b", "d"])
    assert fixed.iloc[-1][["parameter", "share", "low", "p_value"]].isna().tolist()[1:] == [
        True, True, True,
    ]  # fmt: skip
    assert fixed.iloc[-1]["parameter"] == "d"  # one value: nothing to estimate, ranked last
    sparse = main_effects(random_study(5, interaction=0.0), "valid_loss")
    assert sparse["share"].isna().all() and (sparse["high"] == 1).all()


def test_many_valued_parameters_are_named_as_quadratic_fits() -> None:
    results = random_study(60, interaction=1.0)
    table = interaction_scores(results, "valid_loss")
    assert set(table["method"]) == {"two-way ANOVA, hidden_size, lr as quadratic"}
    mains = main_effects(results, "valid_loss")
    assert set(mains["method"]) == {"two-way ANOVA, hidden_size, lr as quadratic"}
    assert mains.iloc[0]["parameter"] == "lr"  # the planted main effect


def test_params_default_to_the_non_metric_columns() -> None:
    table = interaction_scores(grid(product), "valid_loss")
    assert sorted(zip(table["x"], table["y"], strict=True)) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_constant_metric_is_not_above_noise_and_one_parameter_is_refused() -> None:
    table = interaction_scores(grid(lambda a, b, c: 1.0, noise=0.0), "valid_loss", ["a", "b"])
    assert table.iloc[0]["interaction"] == 0.0
    constant = grid(lambda a, b, c: 1.0, noise=0.0)
    assert main_effects(constant, "valid_loss", ["a", "b"])["share"].tolist() == [0.0, 0.0]
    assert table.iloc[0]["verdict"] == "not above noise"
    with pytest.raises(ReportError, match="two searched parameters"):
        interaction_scores(grid(additive), "valid_loss", ["a"])
    with pytest.raises(ReportError, match="unknown column"):
        interaction_scores(grid(additive), "valid_loss", ["a", "zeta"])


def test_an_adaptive_study_is_tested_by_shuffles_and_still_finds_a_planted_pair() -> None:
    planted = interaction_scores(random_study(60, interaction=1.0), "valid_loss", adaptive=True)
    assert verdicts(planted)[("lr", "hidden_size")] == "interacts"
    assert set(planted["method"]) == {"two-way ANOVA, hidden_size, lr as quadratic, permutation p"}
    # 1999 shuffles: no p below 1/2000 before Holm's adjustment over the three pairs.
    assert planted["p_value"].min() == pytest.approx(3 / 2000)
    none = interaction_scores(random_study(60, interaction=0.0), "valid_loss", adaptive=True)
    assert set(none["verdict"]) == {"not above noise"}
    again = interaction_scores(random_study(60, interaction=0.0), "valid_loss", adaptive=True)
    assert_frame_equal(none, again)  # a fixed seed: the same study gives the same table


@pytest.mark.slow
def test_pure_noise_sampled_by_tpe_is_called_an_interaction_at_most_at_the_stated_rate() -> None:
    """200 TPE studies (hyperopt, 16 trials, log lr x integer width) of a metric that is pure
    noise: the page's verdict may call an interaction in 1% of them (ALPHA)."""
    import logging

    from hyperopt import STATUS_OK, Trials, fmin, hp, tpe

    from hypertune.report.interaction import ALPHA

    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    space = {
        "lr": hp.loguniform("lr", np.log(1e-4), np.log(1e-1)),
        "hidden_size": hp.quniform("hidden_size", 16, 128, 1),
    }
    studies, called = 200, 0
    for seed in range(studies):
        noise = np.random.default_rng(10_000 + seed)
        trials = Trials()
        fmin(
            lambda _, noise=noise: {"loss": float(noise.normal()), "status": STATUS_OK},
            space, algo=tpe.suggest, max_evals=16, trials=trials,
            rstate=np.random.default_rng(seed), show_progressbar=False,
        )  # fmt: skip
        frame = pd.DataFrame(
            {"trial_id": f"t{i}", "status": "TERMINATED", "lr": t["misc"]["vals"]["lr"][0],
             "hidden_size": int(t["misc"]["vals"]["hidden_size"][0]),
             "valid_loss": t["result"]["loss"], "epochs": 8}
            for i, t in enumerate(trials.trials)
        )  # fmt: skip
        table = interaction_scores(frame, "valid_loss", adaptive=True)
        assert table["method"].iloc[0].endswith("permutation p")
        called += int((table["verdict"] == "interacts").sum())
    # At the stated rate, 7 or more of 200 happen with probability 0.005.
    assert called <= stats.binom.isf(0.005, studies, ALPHA), called


def test_the_fitted_surface_is_the_tested_model_and_shows_the_planted_pair() -> None:
    from statsmodels.regression.linear_model import OLS

    from hypertune.report.interaction import pair_model, study_design
    from hypertune.report.surface import fitted_surface, surfaces

    results = random_study(60, interaction=1.0)
    two = results.drop(columns="act")
    _, design = study_design(two, "valid_loss", ["lr", "hidden_size"])
    chosen = pair_model(design, ["lr", "hidden_size"], "lr", "hidden_size", None)
    assert chosen is not None
    terms = chosen[1]
    fitted = OLS(design.response, design.matrix(terms)).fit().fittedvalues
    x, y = design.numbers["lr"], design.numbers["hidden_size"]
    at_trials = [design.surface(terms, "lr", "hidden_size", x[i : i + 1], y[i : i + 1])[0, 0]
                 for i in range(len(x))]  # fmt: skip
    assert at_trials == pytest.approx(fitted.tolist(), abs=1e-9)  # the model at its trials
    surface = fitted_surface(results, "valid_loss", ["lr", "hidden_size", "act"], "lr",
                             "hidden_size")  # fmt: skip
    assert surface is not None and surface.method == "two-way ANOVA, hidden_size, lr as quadratic"
    assert surface.x.log and not surface.y.log and surface.values.shape == (41, 41)
    # loss = ... + u * v: lr raises the loss at large widths and lowers it at small ones
    slope_small = surface.values[0, -1] - surface.values[0, 0]
    slope_large = surface.values[-1, -1] - surface.values[-1, 0]
    assert slope_small < 0 < slope_large
    found = surfaces(results, "valid_loss", ["lr", "hidden_size", "act"])
    assert set(found) == {
        (a, b) for a, b in itertools.permutations(["lr", "hidden_size", "act"], 2)
    }
    assert found[("act", "lr")].x.levels == ("gelu", "relu", "tanh")
    # A grid's heatmap shows what was tested: no surface is drawn beside it.
    assert surfaces(grid(product, seeds=2), "valid_loss", ["a", "b", "c"]) == {}
