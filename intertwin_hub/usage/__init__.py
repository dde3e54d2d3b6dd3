"""Personal accounting: what each workload pod used (allocated CPU-core, memory and GPU time),
and the APEL records the sites' accounting expects."""
