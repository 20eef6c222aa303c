from pathlib import Path

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.runtime import settings
from score_bench.tasks.score_toy import ScoreToyTask, differing_spans

KOREAN = (settings.data_dir() or Path(__file__).resolve().parents[3] / "shared" / "data") / "score_toy" / "SCoRe_Dataset.csv"


def grade(task, pairs):
    return [v.correct for v in task.verifier.verify_batch([(p, task.extract(p, r)) for p, r in pairs])]


def test_default_english_set_loads_with_stable_unique_ids():
    problems = ScoreToyTask().problems("test")
    assert len(problems) == 60
    assert len({p.id for p in problems}) == 60
    assert [p.id for p in ScoreToyTask().problems("test")] == [p.id for p in problems]


@pytest.mark.parametrize("path, language", [(None, None), (None, "ko"), (KOREAN, None)],
                         ids=["english", "korean-built-in", "korean-seed-derived-keys"])
def test_given_first_attempts_are_wrong_and_corrections_right(path, language):
    if path is not None and not path.exists():
        pytest.skip(f"seed data not beside the repo: {path}")
    task = ScoreToyTask(path, language=language)
    problems = task.problems()
    corrections = grade(task, [(p, p.metadata["correct_answer"]) for p in problems])
    originals = grade(task, [(p, p.fixed_first_attempt) for p in problems])
    assert all(corrections)
    # Rows whose given first attempt already equals the correction are the only ones right at attempt 1.
    already_right = [p.fixed_first_attempt.strip() == p.metadata["correct_answer"].strip() for p in problems]
    assert originals == already_right


def test_key_span_widens_to_whole_numbers_and_words():
    assert differing_spans("founded in 1592.", "founded in 1392.") == ("1592", "1392")
    assert differing_spans("is Mars.", "is Mercury.") == ("Mars", "Mercury")
    assert differing_spans("수도는 평양이었습니다.", "수도는 한양(현재의 서울)이었습니다.") == ("평양", "한양(현재의 서울)")


def test_bad_files_are_one_line_input_errors(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(InputError, match="not found"):
        ScoreToyTask(missing).problems()
    wrong_columns = tmp_path / "cols.csv"
    wrong_columns.write_text("question,answer\nq,a\n", encoding="utf-8")
    with pytest.raises(InputError, match="lacks column"):
        ScoreToyTask(wrong_columns).problems()
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("category,question,original_answer,correct_answer\nx,café?,a,b\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        ScoreToyTask(latin1).problems()
    with pytest.raises(InputError, match="unknown split"):
        ScoreToyTask().problems("train")


def test_built_in_sets_by_language_and_refusals():
    korean = ScoreToyTask(language="ko").problems()
    assert len(korean) == 59 and korean[6].reference == "유교" and korean[6].metadata["distractor"] == "불교"
    assert "계층으로 나뉘었습니다" in korean[4].metadata["correct_answer"]  # the seed's typo, corrected
    with pytest.raises(InputError, match="built-in sets en, ko"):
        ScoreToyTask(language="fr")
    with pytest.raises(InputError, match="not both"):
        ScoreToyTask("some.csv", language="ko")
