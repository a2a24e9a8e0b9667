"""Visual inspection: a small CNN that rejects defective parts in photos, explained by Grad-CAM."""
