"""Where reward work runs outside the trainer's process, bounded: untrusted programs in a bubblewrap
sandbox (box.py; warm slots: warmslot.py, _zygote.py as PID 1 in each) and verifiers that can hang in
killable worker processes (mathpool.py; its scripts _mathworker.py for math-verify, _gymworker.py for
reasoning-gym). The reward functions that use them are r1repro/rewards/ (code_tests, accuracy, reasoning_gym)."""
