"""Text: the tokenizer rule and the id layout (tokens), lyrics -> sections -> stage-1 prompts (prompt), genre tags
(tags). Hands on prompt ids and `Stage1Prompt`; imports only yue's settings (config, rates), no models."""
