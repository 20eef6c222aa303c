"""Self-correction metrics of SCoRe (Kumar et al. 2024, section 3) as a Hugging Face `evaluate` module.

Inputs are per-problem correctness of two attempts at the same problem: `first_correct` (attempt 1) and
`second_correct` (attempt 2, after the correction instruction). The numbers come from
score_bench.harness.evaluation.metrics.summarize, the code `score-bench eval` writes results.json with, so a run and
this module agree exactly (bootstrap intervals included, for the same seed).

Returns acc_t1, acc_t2, delta (= acc_t2 - acc_t1), delta_i2c (share of problems wrong then right),
delta_c2i (right then wrong), p_i2c_given_i, p_c2i_given_c, and for each a "<name>_ci95" [low, high]
interval from a bootstrap over problems (None where nothing conditions a rate).
"""

import datasets
import evaluate

from score_bench.harness.evaluation import metrics

_CITATION = """\
@article{kumar2024training,
  title={Training Language Models to Self-Correct via Reinforcement Learning},
  author={Kumar, Aviral and Zhuang, Vincent and Agarwal, Rishabh and others},
  journal={arXiv preprint arXiv:2409.12917},
  year={2024}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    first_correct: list of bool, whether attempt 1 at each problem was correct.
    second_correct: list of bool, whether attempt 2 at the same problem was correct.
    seed: int, seeds the bootstrap intervals (default 0, as `score-bench eval --seed 0`).
Returns:
    dict with acc_t1, acc_t2, delta, delta_i2c, delta_c2i, p_i2c_given_i, p_c2i_given_c and "<name>_ci95".
Examples:
    >>> metric = evaluate.load("score_bench/evaluate_metrics/self_correction")
    >>> metric.compute(first_correct=[True, False, False], second_correct=[True, True, False])["delta"]
    0.3333333333333333
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class SelfCorrection(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"first_correct": datasets.Value("bool"),
                                        "second_correct": datasets.Value("bool")}),
            reference_urls=["https://arxiv.org/abs/2409.12917"],
        )

    def _compute(self, first_correct, second_correct, seed=0):
        summary = metrics.summarize([[a, b] for a, b in zip(first_correct, second_correct)], seed=seed)
        out = {}
        for name, entry in summary.items():
            out[name] = entry["value"]
            out[f"{name}_ci95"] = entry["ci95"]
        return out
