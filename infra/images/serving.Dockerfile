# The serving image: the component image (which already installs the shopfloor package, serving/ included) with
# the KServe model server as its entry point, for running the predictor by hand or in another orchestrator.
# The InferenceService in infra/kserve sets the same command explicitly, so it also runs on the component image.
# Build from the repository root, after building infra/images/Dockerfile (infra/images/build.sh builds both):
#   docker build -f infra/images/serving.Dockerfile --build-arg SHOPFLOOR_IMAGE=ghcr.io/shopfloor-ml/shopfloor:0.1.0 \
#     -t ghcr.io/shopfloor-ml/shopfloor-serving:0.1.0 .
# Run: docker run -p 8080:8080 -v "$PWD/model:/mnt/models:ro" ghcr.io/shopfloor-ml/shopfloor-serving:0.1.0 \
#   --model-dir /mnt/models --model-name predictive-maintenance --host 0.0.0.0 --http-port 8080
ARG SHOPFLOOR_IMAGE=ghcr.io/shopfloor-ml/shopfloor:0.1.0
FROM ${SHOPFLOOR_IMAGE}

USER 1000
EXPOSE 8080
ENTRYPOINT ["python", "-m", "shopfloor.serving.server"]
