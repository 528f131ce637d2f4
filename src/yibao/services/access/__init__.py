"""Who may come in: holders' sessions (SMS code or real name and face), the text messages they get, and
the attempt counting every lock-out shares."""
