#!/usr/bin/env bash
# Build the component image, the serving image on top of it and the edge runtime's image (infra/edge/Dockerfile,
# no TensorFlow), tagged as one reference; push them with --push.
#   infra/images/build.sh [--push] [--dry-run] [REGISTRY/NAME:TAG]
# The default reference is the package version's (python -P -c 'from shopfloor.components._image import IMAGE').
# The serving image is the same reference with "-serving" after the name, the edge image with "-edge"
# (components/_image.py's edge_image: what an InferenceService with deploy.runtime edge-* runs). Compile with
#   shopfloor compile --image REGISTRY/NAME:TAG
# --dry-run prints the docker commands instead of running them. Run from anywhere inside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."

push=false
run=""
image=""
for argument in "$@"; do
  case "$argument" in
    --push) push=true ;;
    --dry-run) run="echo" ;;
    -*) echo "error: unknown option $argument (expected --push, --dry-run)" >&2; exit 2 ;;
    *) image="$argument" ;;
  esac
done
if [[ -z "$image" ]]; then
  image="$(python -P -c 'from shopfloor.components._image import DEFAULT_IMAGE; print(DEFAULT_IMAGE)')"
fi
if ! python -P -c 'import sys; from shopfloor.components._image import IMAGE_REFERENCE as r; sys.exit(not r.fullmatch(sys.argv[1]))' "$image"; then
  echo "error: $image is not an image reference (expected REGISTRY/NAME:TAG)" >&2
  exit 2
fi
name="${image%:*}"
tag="${image##*:}"
[[ "$name" == "$image" || "$tag" == */* ]] && { name="$image"; tag="latest"; image="$name:$tag"; }
serving="$name-serving:$tag"
edge="$name-edge:$tag"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"

$run docker build -f infra/images/Dockerfile --build-arg "SHOPFLOOR_IMAGE=$image" \
  --build-arg "SHOPFLOOR_GIT_COMMIT=$commit" -t "$image" .
$run docker build -f infra/images/serving.Dockerfile --build-arg "SHOPFLOOR_IMAGE=$image" -t "$serving" .
$run docker build -f infra/edge/Dockerfile -t "$edge" .
if $push; then
  $run docker push "$image"
  $run docker push "$serving"
  $run docker push "$edge"
fi
