"""Tensor-train matrices: modes, cores, contractions and the TTLinear layer."""

from .apply import tt_apply
from .contract import ContractionPlan, Merge, Order, OrderSetting, Step, best_order, plan_contraction
from .cores import check_cores, core_shapes, init_cores, init_std, to_dense, tt_svd
from .linear import TTLinear
from .modes import check_modes, factorize, prod

__all__ = [
    "ContractionPlan",
    "Merge",
    "Order",
    "OrderSetting",
    "Step",
    "TTLinear",
    "best_order",
    "check_cores",
    "check_modes",
    "core_shapes",
    "factorize",
    "init_cores",
    "init_std",
    "plan_contraction",
    "prod",
    "to_dense",
    "tt_apply",
    "tt_svd",
]
