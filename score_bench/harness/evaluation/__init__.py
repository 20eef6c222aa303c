"""`eval`, `scale` and `grade` as Python APIs (eval_run, scale, grade_file), what they share (sampling_run,
samples_log), the metrics, repair sets and the JSON Schemas of the files they write."""
