# docker/docker.mk: `make image` (included by the top Makefile).
#
#   make image        builds $(IMAGE) (localhost/nginfer:latest) from docker/Dockerfile
#                     with podman (docker when podman is missing): a build stage on
#                     IMAGE_BASE, a runtime stage FROM scratch (about 50 MB). With the default
#                     IMAGE_BASE the base image is first made from Debian's archive by
#                     docker/mkbase.sh (mmdebstrap, about 2-3 minutes, once: cached
#                     while the tag exists), as no image registry is needed then.
#   make image IMAGE_BASE=debian:bookworm-slim
#                     on a machine that can pull: no local base
#   make image-base   only the base image
#   make image-test   tests/e2e/test_container.sh (builds, runs, stops the image)
#
# The same without make: docker build -f docker/Dockerfile --build-arg BASE=debian:bookworm-slim -t nginfer .
# Variables: IMAGE, IMAGE_BASE, CONTAINER (podman or docker), PODMAN_RUNTIME
# (runc when installed: Debian's podman + runc), IMAGE_BUILD_ARGS (more
# `build` options, e.g. --build-arg LAMBDA=yes).

IMAGE            ?= localhost/nginfer:latest
IMAGE_BASE       ?= localhost/nginfer-base:bookworm
CONTAINER        ?= $(if $(shell command -v podman 2>/dev/null),podman,docker)
PODMAN_RUNTIME   ?= $(if $(shell command -v runc 2>/dev/null),runc)
IMAGE_BUILD_ARGS ?=

ifeq ($(CONTAINER),podman)
IMAGE_ENGINE = podman$(if $(PODMAN_RUNTIME), --runtime $(PODMAN_RUNTIME))
# Rootful podman gives its containers nofile/nproc limits of 1048576, which
# runc cannot set where the machine's hard limits are lower ("error setting
# rlimit type 7: operation not permitted"): ask for what the machine allows
# (nproc at most 32768, the most seen to work on this kind of machine).
IMAGE_ULIMITS = n=$$(awk '/^Max open files/ { print $$5 }' /proc/self/limits); \
	p=$$(awk '/^Max processes/ { print $$4 }' /proc/self/limits); \
	case $$n in unlimited) n=1048576 ;; esac; case $$p in unlimited) p=32768 ;; esac; \
	[ "$$n" -le 1048576 ] || n=1048576; [ "$$p" -le 32768 ] || p=32768; \
	ulimits="--ulimit nofile=$$n:$$n --ulimit nproc=$$p:$$p"
IMAGE_ENGINE_BUILD = build --format docker --ignorefile docker/Dockerfile.dockerignore $$ulimits
else
IMAGE_ENGINE = $(CONTAINER)
IMAGE_ULIMITS = ulimits=
# BuildKit reads docker/Dockerfile.dockerignore by itself.
IMAGE_ENGINE_BUILD = build
endif

.PHONY: image image-base image-test
image-base:
	@case "$(IMAGE_BASE)" in \
	localhost/*) bash docker/mkbase.sh "$(IMAGE_BASE)" "$(IMAGE_ENGINE)" ;; \
	*) echo "image-base: $(IMAGE_BASE) comes from a registry: nothing to build" ;; \
	esac

image: image-base
	@set -e; $(IMAGE_ULIMITS); t0=$$(date +%s); \
	echo "image: $(IMAGE_ENGINE) $(IMAGE_ENGINE_BUILD) -f docker/Dockerfile --build-arg BASE=$(IMAGE_BASE) -t $(IMAGE) ."; \
	$(IMAGE_ENGINE) $(IMAGE_ENGINE_BUILD) -f docker/Dockerfile --build-arg BASE=$(IMAGE_BASE) \
	    $(IMAGE_BUILD_ARGS) -t $(IMAGE) . ; \
	size=$$($(IMAGE_ENGINE) image inspect --format '{{.Size}}' $(IMAGE)); \
	awk -v s="$$size" -v t=$$(($$(date +%s) - t0)) -v i="$(IMAGE)" \
	    'BEGIN { printf "image: %s: %.1f MB uncompressed, built in %d s\n", i, s / 1e6, t }'

image-test:
	NGINFER_TEST_CONTAINER=1 bash tests/e2e/test_container.sh
