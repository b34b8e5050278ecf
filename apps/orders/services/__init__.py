from .expiry import orders_expire_all_due, orders_expire_due
from .purchase import Reservation, order_reserve
from .transitions import IllegalTransition, TransitionLost, order_transition

__all__ = [
    "IllegalTransition",
    "Reservation",
    "TransitionLost",
    "order_reserve",
    "order_transition",
    "orders_expire_all_due",
    "orders_expire_due",
]
