"""One module per output type: its builder (registered with the rest of its row in composer.image.outputs)."""
