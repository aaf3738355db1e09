"""The search that evolves a Kokoro voice: a random walk over a style delta, scored by
callbacks, with a held-out score that decides what is kept.

Plain numpy over arrays: nothing here knows about speech. A candidate is a delta of 256
style values added to every row of a base voice pack. Each step draws a gaussian
mutation scaled per dimension by ``spread`` (how much the built-in voices differ there)
and by an adaptive step size (grown after a success, shrunk after a failure: the 1/5th
success rule), and keeps the mutant when its fitness beats the current one.

Fitness alone overfits what it sees, so every accepted candidate also gets a held-out
score (from material the fitness never uses); the result is the accepted candidate with
the best held-out score, and the search stops early once ``patience`` accepted steps in a
row have not improved it.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

STEP_START = 0.3
STEP_MIN = 0.03
STEP_MAX = 1.5
GROW = 1.25
SHRINK = 0.95


@dataclass(frozen=True)
class Evaluation:
    """What the scorer says of one candidate: ``fitness`` (what the walk climbs),
    ``held_out`` (what picks the result) and the parts of the fitness, for people."""

    fitness: float
    held_out: float
    parts: dict[str, float] = field(default_factory=dict)


@dataclass
class SearchState:
    """Everything needed to continue a search where it stopped (it is checkpointed)."""

    current: np.ndarray  # the delta the walk stands on
    current_fitness: float
    best: np.ndarray  # the accepted delta with the best held-out score
    best_eval: Evaluation
    start_eval: Evaluation
    iteration: int = 0
    accepted: int = 0
    stale: int = 0  # accepted steps since the held-out score last improved
    step: float = STEP_START
    seconds: float = 0.0
    seed: int = 0
    history: list[float] = field(default_factory=list)  # best held-out after each step

    def to_bytes(self) -> bytes:
        """The state as a small ``.npz`` (the checkpoint a resumed job reads)."""
        buffer = io.BytesIO()
        np.savez(buffer, current=self.current, best=self.best,
                 scalars=np.array([self.current_fitness, self.iteration, self.accepted,
                                   self.stale, self.step, self.seconds, self.seed], np.float64),
                 best_eval=_eval_array(self.best_eval), start_eval=_eval_array(self.start_eval),
                 best_parts=np.array(json.dumps(self.best_eval.parts)),
                 start_parts=np.array(json.dumps(self.start_eval.parts)),
                 history=np.array(self.history, np.float64))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SearchState:
        with np.load(io.BytesIO(data)) as npz:
            scalars = npz["scalars"]
            return cls(
                current=npz["current"].astype(np.float32),
                current_fitness=float(scalars[0]),
                best=npz["best"].astype(np.float32),
                best_eval=_eval_from(npz["best_eval"], npz["best_parts"]),
                start_eval=_eval_from(npz["start_eval"], npz["start_parts"]),
                iteration=int(scalars[1]), accepted=int(scalars[2]), stale=int(scalars[3]),
                step=float(scalars[4]), seconds=float(scalars[5]), seed=int(scalars[6]),
                history=[float(v) for v in npz["history"]])


def _eval_array(evaluation: Evaluation) -> np.ndarray:
    return np.array([evaluation.fitness, evaluation.held_out], np.float64)


def _eval_from(values: np.ndarray, parts: np.ndarray) -> Evaluation:
    return Evaluation(float(values[0]), float(values[1]),
                      {str(k): float(v) for k, v in json.loads(str(parts)).items()})


def start(evaluate: Callable[[np.ndarray], Evaluation], dims: int, seed: int = 0
          ) -> SearchState:
    """A new search standing on the base voice (a zero delta)."""
    zero = np.zeros(dims, np.float32)
    first = evaluate(zero)
    return SearchState(current=zero, current_fitness=first.fitness, best=zero.copy(),
                       best_eval=first, start_eval=first, seed=seed, history=[first.held_out])


StopCheck = Callable[[SearchState], bool]


def mutation(rng: np.random.Generator, step: float, spread: np.ndarray,
             directions: np.ndarray | None, iteration: int) -> np.ndarray:
    """A random move: every other one inside the span of ``directions`` (rows: the
    differences between the built-in voices, where a few values move the voice a lot),
    the others in all values, each scaled by its ``spread``."""
    if directions is not None and len(directions) and iteration % 2 == 1:
        weights = rng.standard_normal(len(directions)).astype(np.float32)
        return np.asarray(step * weights @ directions / np.sqrt(len(directions)), np.float32)
    return np.asarray(step * spread * rng.standard_normal(len(spread)), np.float32)


def run(state: SearchState, evaluate: Callable[[np.ndarray], Evaluation], spread: np.ndarray,
        *, budget_s: float, patience: int = 6, max_iterations: int = 10_000,
        directions: np.ndarray | None = None, pause: StopCheck | None = None,
        on_step: Callable[[SearchState], None] | None = None) -> tuple[SearchState, str]:
    """Walk from ``state`` until the time budget (``state.seconds`` counts across resumed
    runs) is spent, the held-out score stops improving, or ``pause(state)`` asks to stop
    for now. Returns the state and why it stopped: ``"budget"``, ``"converged"``,
    ``"iterations"`` or ``"paused"``. ``directions`` (optional rows) add moves within their
    span (see :func:`mutation`). ``on_step`` sees the state after every step
    (progress, checkpoints); it may raise to cancel."""
    rng = np.random.default_rng([state.seed, state.iteration])
    scale = np.asarray(spread, np.float32)
    while True:
        if state.seconds >= budget_s:
            return state, "budget"
        if state.stale >= patience:
            return state, "converged"
        if state.iteration >= max_iterations:
            return state, "iterations"
        if pause is not None and pause(state):
            return state, "paused"
        began = time.perf_counter()
        mutant = state.current + mutation(rng, state.step, scale, directions, state.iteration)
        result = evaluate(mutant)
        state.iteration += 1
        if result.fitness > state.current_fitness:
            state.current, state.current_fitness = mutant, result.fitness
            state.accepted += 1
            state.step = min(STEP_MAX, state.step * GROW)
            if result.held_out > state.best_eval.held_out:
                state.best, state.best_eval, state.stale = mutant.copy(), result, 0
            else:
                state.stale += 1
        else:
            state.step = max(STEP_MIN, state.step * SHRINK)
        state.history.append(state.best_eval.held_out)
        state.seconds += time.perf_counter() - began
        if on_step is not None:
            on_step(state)
