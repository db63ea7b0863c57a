"""The hyperpriors' closed-form updates are the exact minimizers of the MAP objective in lambda."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from ttedge.bayes import GammaPrior, HalfCauchyPrior, Hyperprior, LogUniformPrior, make_prior
from ttedge.errors import ConfigError

log10s = st.floats(min_value=-6.0, max_value=4.0)  # M = 10**x
dims = st.integers(min_value=1, max_value=5000)


def numeric_minimizer(prior: Hyperprior, M: float, D: int) -> float:
    """argmin over lambda of the objective, by bounded Brent search over t = log(lambda)."""
    def f(t: float) -> float:
        return float(prior.objective(M, D, math.exp(t)))

    res = minimize_scalar(f, bounds=(-40.0, 25.0), method="bounded", options={"xatol": 1e-12, "maxiter": 2000})
    assert res.success
    return math.exp(res.x)


def assert_minimizer(prior: Hyperprior, M: float, D: int) -> None:
    lam = float(prior.update(M, D))
    assert lam > 0
    assert numeric_minimizer(prior, M, D) == pytest.approx(lam, rel=1e-6)
    # and the derivative vanishes there (a stationary point, not just close to one)
    t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    prior.objective(M, D, t).backward()
    scale = M / (2 * lam**2) + D / (2 * lam)  # size of the derivative's terms
    assert abs(float(t.grad)) <= 1e-9 * scale


@settings(max_examples=150, deadline=None)
@given(m=log10s, D=dims, alpha=st.floats(0.01, 100.0), beta=st.floats(1e-4, 100.0))
def test_gamma_update_is_the_minimizer(m: float, D: int, alpha: float, beta: float) -> None:
    assert_minimizer(GammaPrior(alpha, beta), 10**m, D)


@settings(max_examples=150, deadline=None)
@given(m=log10s, D=dims)
def test_log_uniform_update_is_the_minimizer(m: float, D: int) -> None:
    assert_minimizer(LogUniformPrior(), 10**m, D)


@settings(max_examples=150, deadline=None)
@given(m=log10s, D=dims, eta=st.floats(0.01, 100.0))
def test_half_cauchy_update_is_the_minimizer(m: float, D: int, eta: float) -> None:
    assert_minimizer(HalfCauchyPrior(eta), 10**m, D)


def test_gamma_minimizer_at_zero_sum_of_squares_is_the_threshold() -> None:
    prior = GammaPrior(1.0, 0.1)
    assert float(prior.update(0.0, 30)) == pytest.approx(prior.threshold(30), rel=1e-15)
    assert prior.threshold(30) == pytest.approx(0.1 / (15 + 1 + 1))
    assert numeric_minimizer(prior, 0.0, 30) == pytest.approx(prior.threshold(30), rel=1e-6)
    assert LogUniformPrior().threshold(30) is None and HalfCauchyPrior().threshold(30) is None


def test_updates_equal_the_formulas_of_method_md() -> None:
    M = torch.logspace(-3, 3, 13, dtype=torch.float64)
    D, a, b, eta = 50, 1.5, 0.2, 0.7
    torch.testing.assert_close(GammaPrior(a, b).update(M, D), (M + 2 * b) / (D + 2 + 2 * a), rtol=1e-15, atol=0)
    torch.testing.assert_close(LogUniformPrior().update(M, D), M / (D + 1), rtol=1e-15, atol=0)
    literal = (M - eta**2 * D + torch.sqrt(M**2 + (2 * D + 8) * eta**2 * M + eta**4 * D**2)) / (2 * D + 4)
    torch.testing.assert_close(HalfCauchyPrior(eta).update(M, D), literal, rtol=1e-10, atol=0)


def test_half_cauchy_is_accurate_for_tiny_slices() -> None:
    # the literal formula cancels to ~M/D in float64; 60-digit decimals give the reference root
    for M, D, eta in ((1e-14, 100, 1.0), (1e-6, 4000, 3.0), (0.5, 2, 0.01)):
        with localcontext() as ctx:
            ctx.prec = 60
            e2, m, d = Decimal(eta) ** 2, Decimal(M), Decimal(D)
            exact = (m - e2 * d + (m * m + (2 * d + 8) * e2 * m + e2 * e2 * d * d).sqrt()) / (2 * d + 4)
        assert float(HalfCauchyPrior(eta).update(M, D)) == pytest.approx(float(exact), rel=1e-13)


def test_density_on_lambda_would_be_another_estimator() -> None:
    # p(s) ~ 1/s turned into a density on lambda gains a Jacobian lambda^(-1/2): MAP in lambda is then
    # M / (D + 2), not METHOD.md's M / (D + 1). The objective keeps the density on s, MAP in s.
    M, D = 5.0, 10
    prior = LogUniformPrior()
    jacobian = lambda lam: float(prior.objective(M, D, lam)) + 0.5 * math.log(lam)  # noqa: E731
    res = minimize_scalar(lambda t: jacobian(math.exp(t)), bounds=(-20, 20), method="bounded", options={"xatol": 1e-12})
    assert math.exp(res.x) == pytest.approx(M / (D + 2), rel=1e-6)
    assert float(prior.update(M, D)) == pytest.approx(M / (D + 1), rel=1e-15)


def test_updates_are_vectorized_and_keep_dtype() -> None:
    M = torch.rand(3, 4, dtype=torch.float32)
    for prior in (GammaPrior(), LogUniformPrior(), HalfCauchyPrior()):
        out = prior.update(M, 7)
        assert out.shape == (3, 4) and out.dtype == torch.float32
        torch.testing.assert_close(out[1, 2], prior.update(float(M[1, 2]), 7).float())


def test_make_prior_and_params_round_trip() -> None:
    assert make_prior("gamma", alpha=2, beta=0.5) == GammaPrior(2.0, 0.5)
    assert make_prior("log_uniform") == LogUniformPrior()
    assert make_prior("half_cauchy", eta=3.0) == HalfCauchyPrior(3.0)
    for prior in (GammaPrior(2.0, 0.5), LogUniformPrior(), HalfCauchyPrior(0.3)):
        assert make_prior(prior.name, **prior.params()) == prior
    assert isinstance(GammaPrior(2, 1).alpha, float)
    assert hash(GammaPrior()) == hash(GammaPrior(1.0, 0.1))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: make_prior("x"), r"^unknown rank prior 'x'; use one of gamma, log_uniform, half_cauchy\.$"),
        (lambda: make_prior(3), r"^unknown rank prior 3; use one of gamma, log_uniform, half_cauchy\.$"),
        (lambda: make_prior("gamma", beta=-1.0),
         r"^gamma prior beta must be a positive number, got -1\.0; set beta to a number > 0\.$"),
        (lambda: GammaPrior(alpha=0),
         r"^gamma prior alpha must be a positive number, got 0; set alpha to a number > 0\.$"),
        (lambda: GammaPrior(beta=True),
         r"^gamma prior beta must be a positive number, got True; set beta to a number > 0\.$"),
        (lambda: GammaPrior(beta="0.1"),
         r"^gamma prior beta must be a positive number, got '0\.1'; set beta to a number > 0\.$"),
        (lambda: HalfCauchyPrior(eta=float("nan")),
         r"^half_cauchy prior eta must be a positive number, got nan; set eta to a number > 0\.$"),
        (lambda: make_prior("half_cauchy", beta=1.0), r"^the half_cauchy rank prior has no parameter 'beta'; use eta\.$"),
        (lambda: make_prior("log_uniform", eta=1.0), r"^the log_uniform rank prior has no parameter 'eta'; pass none\.$"),
    ],
)
def test_config_errors(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        build()
