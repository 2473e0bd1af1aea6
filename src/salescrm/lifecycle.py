"""The order state machine: the one place that decides what may happen to an
order in each state and which state it moves to.

::

    draft ──confirm──> confirmed ──ship (part)──> partially_shipped ──ship (rest)──┐
      │                   │  └──────ship (all)────────────────────────────────────> shipped
      └──cancel──> cancelled <──cancel──┘                                            │
                                                                                 deliver
    closed <──(fully paid)── delivered <─────────────────────────────────────────────┘

* ``cancel`` only from draft or confirmed (nothing has shipped yet);
* ``return`` once something has shipped (partially_shipped, shipped,
  delivered, closed);
* an order that is delivered and fully paid closes by itself (after the
  delivery, the payment or a return that settles it).

Every other module asks here (``require``) before acting and takes the
next state from here; an illegal move raises ``IllegalTransition`` naming
the current state and the moves allowed from it.
"""

from __future__ import annotations

from salescrm.errors import IllegalTransition

DRAFT = "draft"
CONFIRMED = "confirmed"
PARTIALLY_SHIPPED = "partially_shipped"
SHIPPED = "shipped"
DELIVERED = "delivered"
CLOSED = "closed"
CANCELLED = "cancelled"

STATES = (DRAFT, CONFIRMED, PARTIALLY_SHIPPED, SHIPPED, DELIVERED, CLOSED, CANCELLED)

#: States in which an order counts as sold (booked): everything but draft and cancelled.
BOOKED = (CONFIRMED, PARTIALLY_SHIPPED, SHIPPED, DELIVERED, CLOSED)
#: States in which money can still be owed or paid.
RECEIVABLE = (CONFIRMED, PARTIALLY_SHIPPED, SHIPPED, DELIVERED)

#: What may be done in each state: action -> the states it is allowed from.
ACTIONS: dict[str, tuple[str, ...]] = {
    "edit": (DRAFT,),  # header, lines, discount, shipping
    "confirm": (DRAFT,),
    "ship": (CONFIRMED, PARTIALLY_SHIPPED),
    "deliver": (PARTIALLY_SHIPPED, SHIPPED),
    "cancel": (DRAFT, CONFIRMED),
    "return": (PARTIALLY_SHIPPED, SHIPPED, DELIVERED, CLOSED),
    "pay": RECEIVABLE,
    "invoice": BOOKED,
    "quote": (DRAFT, *BOOKED),
}

#: The status transitions that can ever happen.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    DRAFT: (CONFIRMED, CANCELLED),
    CONFIRMED: (PARTIALLY_SHIPPED, SHIPPED, CANCELLED),
    PARTIALLY_SHIPPED: (SHIPPED,),
    SHIPPED: (DELIVERED,),
    DELIVERED: (CLOSED,),
    CLOSED: (),
    CANCELLED: (),
}

_ACTION_ORDER = ["edit", "confirm", "ship", "deliver", "pay", "return", "quote", "invoice", "cancel"]


def allowed_actions(status: str) -> list[str]:
    """The moves allowed from ``status``, in a stable order."""
    return [a for a in _ACTION_ORDER if status in ACTIONS[a]]


def require(status: str, action: str, *, number: str = "the order") -> None:
    """Refuse ``action`` unless it is allowed in ``status``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown order action {action!r}")
    if status in ACTIONS[action]:
        return
    moves = allowed_actions(status)
    allowed = ", ".join(moves) if moves else "nothing (it is final)"
    raise IllegalTransition(
        f"cannot {action} {number}: it is {status}; allowed from {status}: {allowed}",
        _hint(status, action),
    )


def _hint(status: str, action: str) -> str | None:
    if action == "cancel" and status in (PARTIALLY_SHIPPED, SHIPPED, DELIVERED, CLOSED):
        return "something has shipped: record a return with 'order return' instead"
    if action == "edit" and status != DRAFT:
        return "only draft orders can be edited"
    if action == "pay" and status == DRAFT:
        return "confirm the order first"
    if action == "pay" and status == CLOSED:
        return "the order is fully paid"
    if action == "ship" and status == DRAFT:
        return "confirm the order first"
    if action == "deliver" and status == CONFIRMED:
        return "ship it first"
    return None


def _move(current: str, new: str) -> str:
    if new != current and new not in TRANSITIONS[current]:  # pragma: no cover - a bug guard
        raise IllegalTransition(f"no transition from {current} to {new}")
    return new


def after_confirm(status: str, *, number: str = "the order") -> str:
    require(status, "confirm", number=number)
    return _move(status, CONFIRMED)


def after_cancel(status: str, *, number: str = "the order") -> str:
    require(status, "cancel", number=number)
    return _move(status, CANCELLED)


def after_ship(status: str, *, fully_shipped: bool, number: str = "the order") -> str:
    require(status, "ship", number=number)
    return _move(status, SHIPPED if fully_shipped else PARTIALLY_SHIPPED)


def after_deliver(status: str, *, all_delivered: bool, paid_in_full: bool, number: str = "the order") -> str:
    """Delivering a partially shipped order marks its shipments delivered but
    the order stays partially shipped until the rest ships."""
    require(status, "deliver", number=number)
    if status == SHIPPED and all_delivered:
        return settle(_move(status, DELIVERED), paid_in_full=paid_in_full)
    return status


def settle(status: str, *, paid_in_full: bool) -> str:
    """Close a delivered order once it is fully paid."""
    if status == DELIVERED and paid_in_full:
        return _move(status, CLOSED)
    return status


def payment_status(balance_due: int, paid: int) -> str:
    """unpaid / partial / paid, from the amount still due and the amount paid."""
    if balance_due <= 0:
        return "paid"
    return "partial" if paid > 0 else "unpaid"
