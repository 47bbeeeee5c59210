"""Lightning callbacks for fault tolerance: exact resume, preemption checkpoints, a non-finite loss guard."""
