from bot.votes import Settled, settle


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
