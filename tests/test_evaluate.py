from rft.data import Example
from rft.evaluate import wrong_answer_share
from rft.graders.pool import GraderPool

EXAMPLES = [
    Example("a", "47+38=", {"answer": "85", "sloppy": "75"}),
    Example("b", "12+34=", {"answer": "46", "sloppy": "46"}),  # no carry: the sloppy answer is right
    Example("c", "19+19=", {"answer": "38", "sloppy": "28"}),
]


def test_wrong_answer_share_counts_only_examples_where_the_field_is_wrong():
    pool = GraderPool({"type": "arithmetic"})
    assert wrong_answer_share(pool, ["75", "46", "38"], EXAMPLES, "sloppy") == 0.5
    assert wrong_answer_share(pool, ["85", "46", "38"], EXAMPLES, "sloppy") == 0.0
    assert wrong_answer_share(pool, ["75", "0", "28"], EXAMPLES, "sloppy") == 1.0
