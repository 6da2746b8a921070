# fcgi/lambda/lambda.mk: `make lambda-zip` (included by the top Makefile).
#
#   $(DIST)/nginfer-lambda.zip       function package for provided.al2023 (or provided.al2):
#       bootstrap   nginfer-lambda itself, relinked with an $ORIGIN/lib rpath (DT_RPATH, searched
#                   before LD_LIBRARY_PATH, so our copies win over the image's)
#       lib/        what `ldd $(LAMBDA)` lists, and libopenblas.so.0 with what it loads (the core
#                   opens it with dlopen when a model needs it: not in ldd's list), except glibc
#                   and the loader (every Lambda OS has them) and libgcc_s (AL2023 has it;
#                   Debian 12's needs glibc 2.35, AL2023 has 2.34)
#   $(DIST)/nginfer-model-layer.zip  layer with models/default.onnx (= /opt/models/default.onnx,
#                   the last place nginfer-lambda looks; NGINFER_MODEL or $LAMBDA_TASK_ROOT/model.onnx
#                   win over it)
# Each zip must stay under Lambda's 50 MB zipped limit and function + layer under 250 MB
# unzipped; the target prints the sizes and fails when over. Every packaged ELF file must
# need at most GLIBC_$(LAMBDA_GLIBC) (AL2023's glibc), checked with objdump when installed.
# Zips with zip(1) when installed, else /usr/bin/python3's zipfile.
# Variables: DIST=dist  LAYER_MODEL=models/default.onnx  LAMBDA_GLIBC=2.34

DIST         ?= dist
LAYER_MODEL  ?= models/default.onnx
LAMBDA_GLIBC ?= 2.34
LAMBDA_PKG    = $(BUILD)/lambda-pkg
# Lambda's limits: 50 MB zipped (each zip), 250 MB unzipped (function and layers together)
LAMBDA_ZIP_LIMIT   = 52428800
LAMBDA_UNZIP_LIMIT = 262144000
lambda_empty :=
lambda_space := $(lambda_empty) $(lambda_empty)
# glibc's own libraries and the loader: provided by every Lambda OS image
LAMBDA_SYSTEM_LIBS = linux-vdso.so.* ld-linux*.so.* libc.so.* libm.so.* libmvec.so.* libpthread.so.* \
                     libdl.so.* librt.so.* libresolv.so.* libutil.so.* libanl.so.* libnsl.so.* \
                     libnss_*.so.* libBrokenLocale.so.* libgcc_s.so.*

# zip DIR OUT: the tree under DIR, paths relative to it, modes kept (bootstrap stays executable)
define lambda_zip
rm -f $(2); \
if command -v zip >/dev/null 2>&1; then \
  (cd $(1) && zip -q -X -r -9 $(abspath $(2)) .); \
else \
  /usr/bin/python3 -c 'import os, sys, zipfile; src, out = sys.argv[1], sys.argv[2]; z = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9); [z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), src)) for d, _, fs in sorted(os.walk(src)) for f in sorted(fs)]; z.close()' $(1) $(2); \
fi
endef

.PHONY: lambda-zip
lambda-zip: $(LAMBDA) $(LAMBDA_OBJ) $(APP_OBJ) $(CORE_LIB) $(LAYER_MODEL)
	@set -e; fn=$(LAMBDA_PKG)/function; layer=$(LAMBDA_PKG)/layer; \
	rm -rf $(LAMBDA_PKG); mkdir -p $$fn/lib $$layer/models $(DIST); \
	$(CC) $(LDFLAGS) -Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/lib' -o $$fn/bootstrap \
	    $(LAMBDA_OBJ) $(APP_OBJ) $(CORE_LIB) -ljson-c -lconfig $(LDLIBS_CORE); \
	if command -v strip >/dev/null 2>&1; then strip --strip-debug $$fn/bootstrap; fi; \
	chmod 0755 $$fn/bootstrap; \
	blas=$$(readlink -f "$$($(CC) -print-file-name=libopenblas.so.0)"); \
	[ -f "$$blas" ] || { echo "lambda-zip: no libopenblas.so.0 (apt-get install libopenblas0-pthread)" >&2; exit 1; }; \
	{ ldd $(LAMBDA); echo "libopenblas.so.0 => $$blas (0)"; ldd "$$blas"; } | \
	  awk '$$2 == "=>" && $$3 ~ /^\// && !seen[$$1]++ { print $$1, $$3 }' > $(LAMBDA_PKG)/ldd.txt; \
	while read -r soname path; do \
	  case $$soname in $(subst $(lambda_space),|,$(strip $(LAMBDA_SYSTEM_LIBS)))) continue ;; esac; \
	  cp -L "$$path" "$$fn/lib/$$soname"; chmod 0644 "$$fn/lib/$$soname"; \
	  echo "lambda-zip: lib/$$soname <- $$path"; \
	done < $(LAMBDA_PKG)/ldd.txt; \
	cp -L $(LAYER_MODEL) $$layer/models/default.onnx; chmod 0644 $$layer/models/default.onnx; \
	if command -v objdump >/dev/null 2>&1; then \
	  for f in $$fn/bootstrap $$fn/lib/*; do \
	    v=$$(objdump -T "$$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1); \
	    if [ -n "$$v" ] && [ "$$(printf '%s\n%s\n' "$$v" "$(LAMBDA_GLIBC)" | sort -V | tail -1)" != "$(LAMBDA_GLIBC)" ]; then \
	      echo "lambda-zip: $$f needs GLIBC_$$v; the Lambda OS has $(LAMBDA_GLIBC) (LAMBDA_GLIBC)" >&2; exit 1; \
	    fi; \
	  done; \
	else echo "lambda-zip: objdump not installed: glibc versions not checked"; fi; \
	$(call lambda_zip,$$fn,$(DIST)/nginfer-lambda.zip); \
	$(call lambda_zip,$$layer,$(DIST)/nginfer-model-layer.zip); \
	over=0; total=0; \
	for z in nginfer-lambda:function nginfer-model-layer:layer; do \
	  name=$(DIST)/$${z%%:*}.zip; dir=$(LAMBDA_PKG)/$${z##*:}; \
	  zs=$$(stat -c %s $$name); us=$$(find $$dir -type f -printf '%s\n' | awk '{ s += $$1 } END { print s + 0 }'); \
	  total=$$((total + us)); \
	  awk -v n=$$name -v z=$$zs -v u=$$us 'BEGIN { printf "lambda-zip: %s: %d bytes zipped (%.1f MB, limit 50 MB), %d bytes unzipped (%.1f MB)\n", n, z, z / 1048576, u, u / 1048576 }'; \
	  if [ $$zs -gt $(LAMBDA_ZIP_LIMIT) ]; then echo "lambda-zip: $$name is over the 50 MB zipped limit" >&2; over=1; fi; \
	done; \
	awk -v u=$$total 'BEGIN { printf "lambda-zip: function + layer: %d bytes unzipped (%.1f MB, limit 250 MB)\n", u, u / 1048576 }'; \
	if [ $$total -gt $(LAMBDA_UNZIP_LIMIT) ]; then echo "lambda-zip: over the 250 MB unzipped limit" >&2; over=1; fi; \
	[ $$over -eq 0 ]
