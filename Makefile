# Two commands on a fresh machine: `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader runs `alembic` and `jupyter` from PATH, so every target sees the venv first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv book test clean system

venv: $(STAMP)

# convlab (the students' package, pyproject.toml) and classgrade (the instructors' grader,
# classgrade/pyproject.toml) are two distributions, both installed editable here.
$(STAMP): requirements.txt pyproject.toml classgrade/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . -e ./classgrade
	touch $@

# The repository the course is published from, for the launch buttons when _config.yml's
# repository.url is empty: origin's URL if it is a public https URL (no user or token in it).
COURSE_REPOSITORY ?= $(shell git remote get-url origin 2>/dev/null | grep -E '^https://[^@/]+/[^@]+$$')

# Both editions: English in _build/html, Chinese in _build/html/zh_CN (book/_ext/editions.py),
# each built as `jupyter-book build . -W -n --keep-going` would; the chapters execute once.
book: $(STAMP)
	COURSE_REPOSITORY='$(COURSE_REPOSITORY)' $(BIN)/python book/_ext/editions.py build --path-output .

# After editing a chapter or a notebook: bring every catalog of book/locales/ up to date with
# the sources and list the messages to translate (new, changed: fuzzy or empty).
.PHONY: catalogs
catalogs: $(STAMP)
	$(BIN)/python book/_ext/editions.py catalogs

test: $(STAMP) system
	$(BIN)/python -m pytest

# Debian packages the tests need: Chromium (browser test), PostgreSQL (shared gradebook),
# bubblewrap (the grading sandbox) and a CJK font (Chromium shows the Chinese edition). Installed as root or through passwordless sudo; otherwise
# make stops at once with the one command that installs them.
system:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	  else echo "make test needs Debian packages:$$missing. Install them with: sudo apt-get install -y$$missing"; exit 1; fi; \
	  echo "installing$$missing (apt-get)"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf _build

# Regenerate the student notebooks in exercises/ from solutions/, and their translations
# exercises/zh_CN/<a>/<a>.ipynb from them and the catalogs (commit all afterwards).
.PHONY: exercises
exercises: $(STAMP)
	$(BIN)/jupyter nbconvert --log-level=WARN --clear-output --inplace solutions/*/*.ipynb
	for dir in solutions/*/; do \
	  $(BIN)/nbgrader generate_assignment "$$(basename $$dir)" --force --no-db --log-level=WARN || exit 1; \
	done
	$(BIN)/python book/_ext/editions.py notebooks

# Grade a whole class (classgrade): make grade ASSIGNMENT=cross_correlation SUBMISSIONS=submitted
# SUBMISSIONS is nbgrader's submitted/ folder or an LMS download (.zip or folder; REGEX= file-name pattern).
# Writes $(GRADE_OUT)/: autograded/, feedback/, submitted/, grades.csv, runs/<UTC timestamp>/ (this run's report),
# report.html (the class, from the gradebook); DB_URL= for a PostgreSQL gradebook; REGRADE_ALL=1 after the source changed.
GRADE_OUT ?= grading
.PHONY: grade
grade: $(STAMP)
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade ASSIGNMENT=name SUBMISSIONS=path [GRADE_OUT=grading] [WORKERS=n] [DB_URL=url] [REGEX=re] [REGRADE_ALL=1]"; exit 2; }
	$(BIN)/python -m classgrade $(ASSIGNMENT) $(SUBMISSIONS) --course . --out $(GRADE_OUT) \
	  $(if $(WORKERS),--workers $(WORKERS)) $(if $(DB_URL),--db-url '$(DB_URL)') $(if $(REGEX),--regex '$(REGEX)') $(if $(REGRADE_ALL),--regrade-all)
