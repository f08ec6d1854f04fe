"""A small bank-account actor the kernel tests drive: easy to fold, easy to check."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.kernel.actor import Actor
from actors.kernel.store import JsonStateStore
from schemas.base import Addressed, Command, Context, Decision, Event, PositiveInt, Rejection


class Open(Command, frozen=True, tag="acct.open.v1"):
    owner: str


class Deposit(Command, frozen=True, tag="acct.deposit.v1"):
    amount: PositiveInt


class Withdraw(Command, frozen=True, tag="acct.withdraw.v1"):
    amount: PositiveInt


class Explode(Command, frozen=True, tag="acct.explode.v1"):
    """A command whose handler always raises: the dead-letter path for handler failures."""


class Opened(Event, frozen=True, tag="acct.opened.v1"):
    owner: str


class Deposited(Event, frozen=True, tag="acct.deposited.v1"):
    amount: int
    balance: int
    n: int


class Withdrawn(Event, frozen=True, tag="acct.withdrawn.v1"):
    amount: int
    balance: int
    n: int


class Audited(Event, frozen=True, tag="auditlog.noted.v1"):
    account: str
    balance: int


class Account(msgspec.Struct, frozen=True):
    owner: str | None = None
    balance: int = 0
    n: int = 0
    """How many deposits and withdrawals were applied: the fold checks order through it."""


def decide(state: Account, message: Any, ctx: Context) -> Decision:
    match message:
        case Open(owner=owner):
            if state.owner is not None:
                return Rejection(kind="conflict", code="already_open", reason="already open")
            return [Opened(owner=owner)]
        case Deposit(amount=amount):
            balance = state.balance + amount
            return [
                Deposited(amount=amount, balance=balance, n=state.n + 1),
                Addressed(ctx.key, Audited(account=ctx.key, balance=balance)),
            ]
        case Withdraw(amount=amount):
            if amount > state.balance:
                return Rejection(
                    code="insufficient_funds",
                    reason=f"cannot withdraw {amount}, the balance is {state.balance}",
                    details={"balance": state.balance},
                )
            return [Withdrawn(amount=amount, balance=state.balance - amount, n=state.n + 1)]
        case Explode():
            raise RuntimeError("this handler always fails")
    raise TypeError(f"unexpected {type(message).__name__}")


def evolve(state: Account, event: Event) -> Account:
    match event:
        case Opened(owner=owner):
            return msgspec.structs.replace(state, owner=owner)
        case Deposited(balance=balance, n=n) | Withdrawn(balance=balance, n=n):
            if n != state.n + 1:
                raise ValueError(f"event n={n} applied to state n={state.n}")
            return msgspec.structs.replace(state, balance=balance, n=n)
    return state


ACCOUNTS: Actor[Account] = Actor(
    name="accounts",
    domain="acct",
    state_type=Account,
    initial=lambda key: Account(),
    decide=decide,
    evolve=evolve,
    store=JsonStateStore(Account),
    commands=[Open, Deposit, Withdraw, Explode],
    emits=[Opened, Deposited, Withdrawn, Audited],
)


class Tally(msgspec.Struct, frozen=True):
    deposits: int = 0
    total: int = 0


class Counted(Event, frozen=True, tag="tally.counted.v1"):
    deposits: int
    total: int


def tally_decide(state: Tally, message: Any, ctx: Context) -> Decision:
    match message:
        case Deposited(amount=amount):
            return [Counted(deposits=state.deposits + 1, total=state.total + amount)]
    return []


def tally_evolve(state: Tally, event: Event) -> Tally:
    match event:
        case Counted(deposits=d, total=t):
            return Tally(deposits=d, total=t)
    return state


TALLY: Actor[Tally] = Actor(
    name="tally",
    domain="tally",
    state_type=Tally,
    initial=lambda key: Tally(),
    decide=tally_decide,
    evolve=tally_evolve,
    store=JsonStateStore(Tally),
    reactions=[Deposited],
    emits=[Counted],
)
