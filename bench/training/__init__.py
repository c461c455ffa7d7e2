"""Training studies: paper reproductions over seeds (:mod:`.reproduce`) and time-to-accuracy
(:mod:`.speedrun`). Above measurement (they use its inputs, system facts and records)."""
