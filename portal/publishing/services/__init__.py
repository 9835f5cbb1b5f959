"""Publishing's behaviour: posts (:mod:`.posts`), the delivery engine
(:mod:`.deliveries`) and what follows a sent post (:mod:`.followups`)."""
