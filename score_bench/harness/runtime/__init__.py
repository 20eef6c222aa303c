"""What a run needs from its machine and disk: environment settings, pinned CPU kernels, bounded reads of user
files, atomic writes and provenance, output locks and guards, saves that survive a full disk."""
