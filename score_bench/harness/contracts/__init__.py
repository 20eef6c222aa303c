"""The contracts every part of score-bench shares: data types, the Task, Verifier and Backend protocols,
errors, the plugin registry, config-field checks and the progress protocol."""
