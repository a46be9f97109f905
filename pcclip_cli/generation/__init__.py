"""Generation of comparatives and class texts: settings and plans, prompt templates, and the resumable run."""
