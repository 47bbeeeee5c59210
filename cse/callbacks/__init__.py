"""Lightning callbacks: fault tolerance (exact resume, preemption checkpoints, a non-finite loss guard), throughput
and progress, and the per-step hook calls of Lightning's loop that do nothing, left out."""
