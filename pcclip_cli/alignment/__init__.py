"""EX2-style alignment: an LLM fine-tuned by reinforcement learning to write the class descriptions a CLIP model
prefers (reward: the description's cosine with the class's training images), and the analysis of what it writes."""
