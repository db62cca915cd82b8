"""One blueprint a feature; each package exports `bp`. Blueprints never import each other."""
