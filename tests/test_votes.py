from bot.votes import Settled, settle, settle_counts


def test_majority_wins_and_ties_settle_nothing():
    assert settle([("is", 1), ("is", 1), ("is", 2)]) == Settled(1, 2, 1, False)
    assert settle([("is", 1), ("is", 2)]) == Settled(None, 0, 2, True)
    assert settle([("not", None)]) == Settled(None, 0, 1, False)
    assert settle([]) == Settled(None, 0, 0, False)


def test_rejections_of_the_bots_guess_count_against_it():
    assert settle([("is", 7), ("not", None)], guess_character_id=7) == Settled(None, 0, 2, True)
    assert settle([("is", 7), ("not", None), ("not", None)], guess_character_id=7) == Settled(None, 0, 3, False)
    assert settle([("is", 7), ("is", 7), ("not", None)], guess_character_id=7) == Settled(7, 2, 1, False)
    # a "not" says nothing against a name other than the guess
    assert settle([("is", 3), ("not", None)], guess_character_id=7) == Settled(3, 1, 1, False)


def test_counts_as_a_group_by_yields_them_settle_the_same():
    votes = [("is", 7), ("is", 7), ("not", None), ("is", 3)]
    rows = [("is", 7, 2), ("not", None, 1), ("is", 3, 1)]
    assert settle_counts(rows, 7) == settle(votes, 7) == Settled(7, 2, 2, False)
    assert settle_counts([("is", 7, 1), ("is", 7, 1), ("not", None, 2)], 7) == Settled(None, 0, 4, True)
