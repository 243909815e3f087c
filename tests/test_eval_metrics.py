"""pass@k and cons@k against values computed by hand."""

from itertools import combinations

import pytest

from r1repro.evaluation.metrics import cons_at_k, pass_at_k


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (4, 1, 1, 0.25),  # pass@1 is c/n
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (4, 0, 4, 0.0),
        (4, 4, 1, 1.0),
        (4, 3, 2, 1.0),  # n - c < k: every pair holds a correct sample
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_equals_mean_over_all_subsets():
    # The estimator is exactly the fraction of k-subsets containing a correct sample.
    correct = [1, 0, 0, 1, 0, 0]
    for k in range(1, 7):
        subsets = list(combinations(correct, k))
        assert pass_at_k(6, 2, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 2, 5), (4, 2, 0)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match="pass_at_k"):
        pass_at_k(n, c, k)


def test_cons_majority_correct_and_wrong():
    assert cons_at_k(["5", "5", "7", "9"], [True, True, False, False]) == 1.0
    assert cons_at_k(["7", "5", "7", "7"], [False, True, False, False]) == 0.0


def test_cons_tie_scores_expected_value_of_random_tie_break():
    assert cons_at_k(["5", "7", "5", "7"], [True, False, True, False]) == 0.5
    assert cons_at_k(["1", "2", "3", None], [True, False, False, False]) == pytest.approx(1 / 3)
    # Order does not matter: the correct answer coming first gets no advantage.
    assert cons_at_k(["7", "5"], [False, True]) == cons_at_k(["5", "7"], [True, False]) == 0.5


def test_cons_unparsed_answers_do_not_vote():
    # Three samples without an answer cannot outvote the one parsed answer.
    assert cons_at_k([None, None, None, "42"], [False, False, False, True]) == 1.0
    assert cons_at_k([None, None], [False, False]) == 0.0


def test_cons_groups_answers_up_to_whitespace():
    assert cons_at_k([" 42", "42 ", "$42$", "41", "40"], [True, True, True, False, False]) == 1.0


def test_cons_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 answers but 1"):
        cons_at_k(["1", "2"], [True])
