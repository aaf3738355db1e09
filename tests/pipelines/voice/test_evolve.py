"""The style search on its own (plain arrays, no speech): it climbs towards a target,
picks its result by the held-out score, stops on budget, convergence or a pause, and a
checkpoint continues where it stopped."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from models.voice import acoustic
from pipelines.voice import evolve as voice_evolve
from pipelines.voice.evolve import Evaluation, SearchState


def _target_scorer(target: np.ndarray, held: np.ndarray
                   ) -> tuple[Callable[[np.ndarray], Evaluation], list[np.ndarray]]:
    """Fitness: nearness to ``target``; held-out score: nearness to ``held``."""
    calls: list[np.ndarray] = []

    def evaluate(delta: np.ndarray) -> Evaluation:
        calls.append(delta.copy())
        fitness = -float(np.linalg.norm(delta - target))
        return Evaluation(fitness, -float(np.linalg.norm(delta - held)), {"speaker": fitness})

    return evaluate, calls


def test_search_approaches_a_target_it_only_sees_through_scores() -> None:
    rng = np.random.default_rng(1)
    target = rng.normal(0, 0.5, 32).astype(np.float32)
    evaluate, calls = _target_scorer(target, target)
    state = voice_evolve.start(evaluate, 32, seed=3)
    state, reason = voice_evolve.run(state, evaluate, np.ones(32, np.float32), budget_s=60,
                                     patience=50, max_iterations=400)
    assert reason in ("iterations", "converged")
    start_distance = float(np.linalg.norm(target))
    assert np.linalg.norm(state.best - target) < 0.5 * start_distance
    assert state.best_eval.held_out > state.start_eval.held_out
    assert len(calls) == state.iteration + 1  # one evaluation per step, plus the start
    assert state.history == sorted(state.history)  # the kept held-out score never falls


def test_held_out_score_picks_the_result_and_stops_overfitting() -> None:
    """The fitness pulls towards one point, the held-out score prefers the start: the
    result stays where the held-out score was best and the search stops early."""
    target = np.full(8, 2.0, np.float32)
    evaluate, _ = _target_scorer(target, np.zeros(8, np.float32))
    state = voice_evolve.start(evaluate, 8)
    state, reason = voice_evolve.run(state, evaluate, np.ones(8, np.float32), budget_s=60,
                                     patience=4, max_iterations=500)
    assert reason == "converged"
    assert state.current_fitness > state.start_eval.fitness  # the walk went on climbing
    assert np.linalg.norm(state.best) < np.linalg.norm(state.current)  # the result did not


def test_directions_move_within_their_span() -> None:
    rng = np.random.default_rng(0)
    directions = np.eye(4, 16, dtype=np.float32)
    move = voice_evolve.mutation(rng, 1.0, np.ones(16, np.float32), directions, iteration=1)
    assert np.all(move[4:] == 0) and np.any(move[:4] != 0)
    move = voice_evolve.mutation(rng, 1.0, np.ones(16, np.float32), directions, iteration=2)
    assert np.count_nonzero(move) == 16


def test_budget_pause_and_checkpoint_resume() -> None:
    target = np.linspace(-1, 1, 16).astype(np.float32)
    evaluate, _ = _target_scorer(target, target)
    state = voice_evolve.start(evaluate, 16, seed=5)
    state, reason = voice_evolve.run(state, evaluate, np.ones(16, np.float32), budget_s=60,
                                     patience=100, pause=lambda s: s.iteration >= 5)
    assert reason == "paused" and state.iteration == 5
    restored = SearchState.from_bytes(state.to_bytes())
    assert restored.iteration == 5 and restored.best_eval == state.best_eval
    np.testing.assert_array_equal(restored.best, state.best)
    assert restored.history == state.history and restored.step == pytest.approx(state.step)
    restored, reason = voice_evolve.run(restored, evaluate, np.ones(16, np.float32),
                                        budget_s=60, patience=100, max_iterations=12)
    assert reason == "iterations" and restored.iteration == 12
    restored.seconds = 61.0
    assert voice_evolve.run(restored, evaluate, np.ones(16, np.float32), budget_s=60
                            )[1] == "budget"


def test_on_step_can_cancel() -> None:
    evaluate, _ = _target_scorer(np.ones(4, np.float32), np.ones(4, np.float32))
    state = voice_evolve.start(evaluate, 4)

    def stop(current: SearchState) -> None:
        if current.iteration == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        voice_evolve.run(state, evaluate, np.ones(4, np.float32), budget_s=60, on_step=stop)
    assert state.iteration == 3


def test_acoustic_similarity_weighs_pitch_as_a_third() -> None:
    base = np.zeros(2 + 2 * acoustic.N_MFCC, np.float32)
    assert acoustic.similarity(base, base) == pytest.approx(1.0)
    higher = base.copy()
    higher[0] = 12.0  # an octave up: the pitch group is lost, the envelope groups are not
    assert acoustic.similarity(base, higher) == pytest.approx(1 - 0.5 / 3, abs=0.01)
